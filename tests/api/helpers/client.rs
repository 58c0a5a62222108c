//! Requests through Rocket's local client, and the replies as the tests look at them.

use std::net::SocketAddr;

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::LocalResponse;
use serde_json::{Value, json};

use super::TestApp;

pub const PASSWORD: &str = "violet kettle 9 tambourine";

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
}

pub fn access(body: &Value) -> &str {
    body["access_token"].as_str().unwrap()
}

pub fn refresh(body: &Value) -> &str {
    body["refresh_token"].as_str().unwrap()
}

/// A request with extra headers.
pub async fn send_with(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = match method {
        "POST" => app.client.post(path.to_owned()),
        "PUT" => app.client.put(path.to_owned()),
        _ => app.client.get(path.to_owned()),
    };
    if let Some(body) = body {
        request = request.header(ContentType::JSON).body(body.to_string());
    }
    request = request.header(Header::new("Authorization", format!("Bearer {token}")));
    for (name, value) in headers {
        request = request.header(Header::new(name.to_string(), value.to_string()));
    }
    Reply::from(request.dispatch().await).await
}

/// A POST with an `Idempotency-Key`.
pub async fn post_with_key(
    app: &TestApp,
    path: &str,
    body: Value,
    token: &str,
    key: &str,
) -> Reply {
    send_with(
        app,
        "POST",
        path,
        Some(body),
        token,
        &[("Idempotency-Key", key)],
    )
    .await
}

/// `GET /api/tokens/balance`, which must answer 200.
pub async fn balance(app: &TestApp, token: &str) -> Value {
    let reply = app.get("/api/tokens/balance", Some(token)).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.body
}

/// A claim of social task `task`, with a proof URL and `handle` if given.
pub async fn claim(app: &TestApp, token: &str, task: &str, handle: Option<&str>) -> Reply {
    let mut body =
        json!({ "task_id": task, "proof_url": format!("https://social.example.com/{task}/proof") });
    if let Some(handle) = handle {
        body["handle"] = json!(handle);
    }
    app.post("/api/tokens/social", body, Some(token)).await
}
