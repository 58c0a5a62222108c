//! `spawn_app()` and friends: a fresh application per test, driven through Rocket's local client.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use audiostudio::platform::clock::ManualClock;
use audiostudio::{App, Deps};
use rocket::figment::Figment;
use rocket::figment::providers::Serialized;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const PASSWORD: &str = "violet kettle 9 tambourine";

pub struct TestApp {
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub dir: TempDir,
}

/// Settings that keep tests fast and out of each other's way; `customize` adds more.
pub async fn spawn_app_with(customize: impl FnOnce(Figment) -> Figment) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let figment =
        audiostudio::platform::config::figment(Some(Path::new("/nonexistent/Rocket.toml")))
            .merge(Serialized::global("data_dir", dir.path()))
            .merge(Serialized::global("log_level", "off"))
            .merge(Serialized::global("argon2_memory_kib", 1024))
            .merge(Serialized::global("argon2_iterations", 1))
            .merge(Serialized::global("rate_limit_login_per_minute", 10_000))
            .merge(Serialized::global("rate_limit_register_per_hour", 10_000))
            .merge(Serialized::global(
                "rate_limit_password_reset_per_hour",
                10_000,
            ))
            .merge(Serialized::global(
                "public_base_url",
                "https://studio.example.com",
            ));
    let rocket = audiostudio::build(
        customize(figment),
        Deps {
            clock: clock.clone(),
        },
    )
    .unwrap();
    let client = Client::untracked(rocket).await.unwrap();
    TestApp { client, clock, dir }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|f| f).await
}

pub struct Reply {
    pub status: Status,
    pub body: Value,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub async fn from(response: LocalResponse<'_>) -> Reply {
        let status = response.status();
        let content_type = response.content_type().map(|c| c.to_string());
        let headers = response
            .headers()
            .iter()
            .map(|h| (h.name().as_str().to_ascii_lowercase(), h.value().to_owned()))
            .collect();
        let text = response.into_string().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            body,
            content_type,
            headers,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts this is an RFC 9457 problem with that status.
    pub fn assert_problem(&self, status: u16) -> &Self {
        assert_eq!(self.status.code, status, "body: {}", self.body);
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["type"].is_string() && self.body["title"].is_string(),
            "{}",
            self.body
        );
        self
    }
}

impl TestApp {
    pub fn clock_now(&self) -> i64 {
        use audiostudio::platform::clock::Clock as _;
        self.clock.now_ms()
    }

    pub fn app(&self) -> &App {
        self.client.rocket().state::<App>().unwrap()
    }

    /// A read-only view of the database, for asserting what was stored.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("audiostudio.db")).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
        ip: Option<&str>,
    ) -> Reply {
        let mut request = match method {
            "GET" => self.client.get(path.to_owned()),
            "POST" => self.client.post(path.to_owned()),
            "PUT" => self.client.put(path.to_owned()),
            "DELETE" => self.client.delete(path.to_owned()),
            other => panic!("method {other}"),
        };
        if let Some(body) = body {
            request = request.header(ContentType::JSON).body(body);
        }
        if let Some(token) = token {
            request = request.header(Header::new("Authorization", format!("Bearer {token}")));
        }
        if let Some(ip) = ip {
            request = request.remote(SocketAddr::new(ip.parse().unwrap(), 40000));
        }
        Reply::from(request.dispatch().await).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Reply {
        self.send("POST", path, Some(&body.to_string()), token, None)
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send("GET", path, None, token, None).await
    }

    pub async fn put(&self, path: &str, body: Value, token: Option<&str>) -> Reply {
        self.send("PUT", path, Some(&body.to_string()), token, None)
            .await
    }

    pub async fn register(&self, email: &str) -> Value {
        let reply = self
            .post(
                "/api/auth/register",
                json!({ "email": email, "password": PASSWORD }),
                None,
            )
            .await;
        assert_eq!(reply.status, Status::Created, "{}", reply.body);
        reply.body
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/auth/login",
            json!({ "email": email, "password": password }),
            None,
        )
        .await
    }

    pub async fn assert_logs_in(&self, email: &str, password: &str) {
        let reply = self.login(email, password).await;
        assert_eq!(
            reply.status,
            Status::Ok,
            "{email} could not log in: {}",
            reply.body
        );
    }

    /// Makes a registered user an admin, as `users create --admin` would have.
    pub fn promote(&self, user_id: &str) {
        self.db()
            .execute("UPDATE users SET role = 'admin' WHERE id = ?1", [user_id])
            .unwrap();
    }

    /// The newest queued email to `to`: (subject, text body).
    pub fn last_email_to(&self, to: &str) -> Option<(String, String)> {
        self.db()
            .query_row(
                "SELECT subject, text_body FROM email_outbox WHERE to_address = ?1 ORDER BY id DESC LIMIT 1",
                [to],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()
    }

    /// The token carried by the link in the newest email to `to`.
    pub fn token_from_last_email(&self, to: &str) -> String {
        let (_, text) = self.last_email_to(to).expect("an email was queued");
        token_in(&text)
    }

    pub fn audit_actions(&self) -> Vec<String> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT action FROM audit_logs ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Every row of every application table, to show that a request changed nothing.
    pub fn snapshot(&self) -> String {
        let db = self.db();
        let tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut out = String::new();
        for table in tables {
            // The outbox worker updates delivery columns on its own schedule; the messages are what count.
            let columns = if table == "email_outbox" {
                "id, to_address, subject, text_body"
            } else {
                "*"
            };
            let mut stmt = db
                .prepare(&format!("SELECT {columns} FROM {table} ORDER BY rowid"))
                .unwrap();
            let columns = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            out.push_str(&format!("[{table}]\n"));
            while let Some(row) = rows.next().unwrap() {
                for i in 0..columns {
                    match row.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Text(t) => {
                            out.push_str(&String::from_utf8_lossy(t))
                        }
                        other => out.push_str(&format!("{other:?}")),
                    }
                    out.push('|');
                }
                out.push('\n');
            }
        }
        out
    }
}

/// Finds `token=...` in a message body.
pub fn token_in(text: &str) -> String {
    let re = regex::Regex::new(r"token=([A-Za-z0-9_-]+)").unwrap();
    re.captures(text).expect("a token link")[1].to_owned()
}

pub fn access(body: &Value) -> &str {
    body["access_token"].as_str().unwrap()
}

pub fn refresh(body: &Value) -> &str {
    body["refresh_token"].as_str().unwrap()
}

/// The newest migration version shipped in `migrations/`, which `/health` must report.
pub fn latest_migration() -> i64 {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix('V')?.split("__").next()?.parse().ok()
        })
        .max()
        .unwrap()
}

/// Makes sure the Python tools in tests/requirements.txt (Stripe's library, localstripe)
/// are importable, installing them with pip once if they are not: `cargo test` alone
/// works on a fresh machine. Panics with pip's output when that fails.
pub fn ensure_python_tools() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let importable = |check: &str| {
            std::process::Command::new("python3")
                .args(["-c", check])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if importable("import stripe, localstripe") {
            return;
        }
        let requirements = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/requirements.txt");
        let pip = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                requirements,
            ])
            .output()
            .expect("python3 is needed by the Stripe tests");
        assert!(
            pip.status.success() && importable("import stripe, localstripe"),
            "could not install the Python test tools from {requirements}: {}",
            String::from_utf8_lossy(&pip.stderr)
        );
    });
}
