//! The OpenAPI contract, fuzzed: schemathesis (PyPI, pinned in tests/requirements.txt) runs
//! `--checks all` against the document the real binary serves, as a user and as an admin,
//! with Stripe pointed at localstripe so billing routes answer real results. Seeded and
//! bounded: `AUDIOSTUDIO_CONTRACT_EXAMPLES` (cases per operation, default 8) and
//! `AUDIOSTUDIO_CONTRACT_SEED` (default 1) make a longer or different run.
//!
//! `AUDIOSTUDIO_CONTRACT_AS=user` (or `admin`) runs one half alone. Any failure fails the test.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::harness::*;
use crate::stripe::LocalStripe;

/// Which answers `positive_data_acceptance` accepts where a refusal depends on a secret or
/// on state (each entry says which); every check stays on everywhere.
const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/contract-schemathesis.toml"
);
/// Sends non-ASCII header values as UTF-8, which Rocket reads (see the file).
const HOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/contract_hooks.py");
const USER: &str = "contract-user@example.com";
const ADMIN: &str = "contract-admin@example.com";

/// Limits far above what the run sends, so routes answer their real results, not 429.
const HIGH_LIMITS: [(&str, &str); 12] = [
    ("ROCKET_RATE_LIMIT_LOGIN_PER_MINUTE", "100000"),
    // Wrong current passwords count toward the account's lockout like failed logins.
    ("ROCKET_LOGIN_MAX_FAILURES", "100000"),
    ("ROCKET_RATE_LIMIT_REGISTER_PER_HOUR", "100000"),
    ("ROCKET_RATE_LIMIT_PASSWORD_RESET_PER_HOUR", "100000"),
    ("ROCKET_RATE_LIMIT_PUBLIC_PER_MINUTE", "100000"),
    ("ROCKET_RATE_LIMIT_WEBHOOK_PER_MINUTE", "100000"),
    ("ROCKET_RATE_LIMIT_GLOBAL_PER_MINUTE", "1000000"),
    ("ROCKET_RATE_LIMIT_TOKEN_MUTATIONS_PER_MINUTE", "100000"),
    ("ROCKET_RATE_LIMIT_SOCIAL_CLAIMS_PER_HOUR", "100000"),
    ("ROCKET_RATE_LIMIT_CHECKOUT_PER_HOUR", "100000"),
    ("ROCKET_RATE_LIMIT_BILLING_HISTORY_PER_MINUTE", "100000"),
    ("ROCKET_RATE_LIMIT_ACCOUNT_CHANGES_PER_HOUR", "100000"),
];

/// Operations that can end the caller's own session or second factor (logging out, ending
/// sessions, resetting two-factor sign-in): each is fuzzed alone on a fresh session, after
/// everything else, so one success cannot turn the rest of a run into 401s. A rule on the
/// path, so an operation added later is covered.
fn ends_own_session(path: &str) -> bool {
    let user = matches!(
        path,
        "/api/auth/logout"
            | "/api/auth/logout-all"
            | "/api/auth/change-password"
            | "/api/auth/mfa/totp/disable"
    ) || path.starts_with("/api/auth/sessions/");
    let admin = path.starts_with("/api/admin/users/{")
        && (path.contains("/sessions/") || path.ends_with("/mfa-reset"));
    user || admin
}

/// `^(a|b)$` for exact paths (`{id}` braces escaped).
fn exact_paths(paths: &[String]) -> String {
    let escaped: Vec<String> = paths.iter().map(|p| regex::escape(p)).collect();
    format!("^({})$", escaped.join("|"))
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.into())
}

/// Installs tests/requirements.txt when schemathesis is missing (a fresh machine).
fn ensure_schemathesis() {
    let importable = || {
        Command::new("python3")
            .args(["-c", "import schemathesis.cli"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if importable() {
        return;
    }
    let requirements = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/requirements.txt");
    let pip = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["-r", requirements])
        .output()
        .expect("python3 (>= 3.9, with pip) is needed to run schemathesis");
    assert!(
        pip.status.success() && importable(),
        "schemathesis is not importable after `pip install -r {requirements}`:\n{}",
        String::from_utf8_lossy(&pip.stderr)
    );
}

/// `st run` against `server` with `token`, `filter` selecting operations; its whole output
/// when it found failures.
fn schemathesis(
    dir: &Path,
    server: &Server,
    token: &str,
    who: &str,
    filter: &[&str],
) -> Result<(), String> {
    let examples = env_or("AUDIOSTUDIO_CONTRACT_EXAMPLES", "8");
    let seed = env_or("AUDIOSTUDIO_CONTRACT_SEED", "1");
    let auth = format!("Authorization: Bearer {token}");
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; sys.exit(schemathesis())",
            "--config-file",
            CONFIG,
            "run",
            &server.url("/api/openapi.json"),
            "--checks",
            "all",
            "--header",
            &auth,
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
            "--generation-database",
            "none",
        ])
        .args(filter)
        .env("SCHEMATHESIS_HOOKS", HOOKS)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = text.find("=== SUMMARY").map_or(text.as_str(), |at| {
        &text[text[..at].rfind('\n').unwrap_or(at)..]
    });
    eprintln!("--- schemathesis as {who} {filter:?}\n{summary}");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "schemathesis as {who} {filter:?} (seed {seed}):\n{text}"
        ))
    }
}

/// A client without pooled connections: between two logins a schemathesis run lasts long
/// enough for the server to close an idle kept-alive connection under a pooled client.
fn fresh() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .expect("HTTP client")
}

/// Who schemathesis acts as: a password login, and for the admin a second factor (a
/// recovery code per login, as the TOTP code of a step works only once).
struct Caller {
    email: &'static str,
    who: &'static str,
    recovery_codes: Vec<String>,
}

impl Caller {
    fn login(&mut self, server: &Server) -> String {
        let body = json!({ "email": self.email, "password": PASSWORD });
        let answer = server.expect_ok(fresh().post(server.url("/api/auth/login")).json(&body));
        if answer["mfa_required"] != true {
            return answer["access_token"]
                .as_str()
                .expect("access_token")
                .into();
        }
        let code = self.recovery_codes.pop().expect("a recovery code left");
        let verify = json!({ "mfa_token": answer["mfa_token"], "recovery_code": code });
        let request = fresh().post(server.url("/api/auth/mfa/verify"));
        let answer = server.expect_ok(request.json(&verify));
        answer["access_token"]
            .as_str()
            .expect("access_token")
            .into()
    }

    /// Enrols the account in two-factor sign-in (admins use the admin API only from a
    /// session with a second factor), keeping its recovery codes.
    fn enrol_second_factor(&mut self, server: &Server) {
        let token = self.login(server);
        let setup = json!({ "password": PASSWORD });
        let request = fresh().post(server.url("/api/auth/mfa/totp/setup"));
        let setup = server.expect_ok(request.bearer_auth(&token).json(&setup));
        let secret = setup["secret"].as_str().expect("secret");
        let secret = totp_rs::Secret::try_from_base32(secret).expect("a base32 secret");
        let totp = totp_rs::Builder::new()
            .with_secret(secret)
            .build()
            .expect("totp");
        let now = std::time::SystemTime::now();
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970");
        let confirm = json!({ "code": totp.generate(secs.as_secs()).to_string() });
        let request = fresh().post(server.url("/api/auth/mfa/totp/confirm"));
        let codes = server.expect_ok(request.bearer_auth(&token).json(&confirm));
        let codes = codes["recovery_codes"].as_array().expect("recovery_codes");
        let codes = codes.iter().map(|c| c.as_str().expect("a code").to_owned());
        self.recovery_codes = codes.collect();
    }

    /// Every operation but the session-ending ones on one session, then each of those alone.
    fn fuzz(&mut self, dir: &Path, server: &Server, ending: &[String]) -> Vec<String> {
        let token = self.login(server);
        let all_but = ["--exclude-path-regex", &exact_paths(ending)];
        let mut failed = Vec::new();
        failed.extend(schemathesis(dir, server, &token, self.who, &all_but).err());
        for path in ending {
            let token = self.login(server);
            let only = [
                "--include-path-regex",
                &exact_paths(std::slice::from_ref(path)),
            ];
            failed.extend(schemathesis(dir, server, &token, self.who, &only).err());
        }
        failed
    }
}

#[test]
fn the_served_openapi_document_matches_the_server_under_schemathesis_as_a_user_and_an_admin() {
    ensure_schemathesis();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let stripe = LocalStripe::start(dir);
    data_cli_ok(dir, &["seed"], Some(""));
    let password = format!("{PASSWORD}\n");
    data_cli_ok(dir, &["users", "create", "--email", USER], Some(&password));
    let admin = ["users", "create", "--admin", "--email", ADMIN];
    data_cli_ok(dir, &admin, Some(&password));

    let base = stripe.url("");
    let mut envs = FAST_ARGON2.to_vec();
    envs.extend(HIGH_LIMITS);
    envs.extend([
        ("STRIPE_SECRET_KEY", "sk_test_localstripe_contract"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_localstripe_contract"),
        ("STRIPE_API_BASE", base.as_str()),
    ]);
    let data = data_dir(dir);
    let server = Server::start_serve(dir, &["--data-dir", path_str(&data)], &envs);

    let document = server.expect_ok(fresh().get(server.url("/api/openapi.json")));
    let paths = document["paths"].as_object().expect("paths");
    let ending: Vec<String> = paths
        .keys()
        .filter(|p| ends_own_session(p))
        .cloned()
        .collect();
    let user_ending: Vec<String> = ending
        .iter()
        .filter(|p| !p.starts_with("/api/admin"))
        .cloned()
        .collect();

    // The user first: the admin's run may disable the user's account.
    let only = std::env::var("AUDIOSTUDIO_CONTRACT_AS").ok();
    let runs = |who: &str| only.as_deref().is_none_or(|o| o == who);
    let mut failed = Vec::new();
    if runs("user") {
        let mut user = Caller {
            email: USER,
            who: "user",
            recovery_codes: Vec::new(),
        };
        failed.extend(user.fuzz(dir, &server, &user_ending));
    }
    if runs("admin") {
        let mut admin = Caller {
            email: ADMIN,
            who: "admin",
            recovery_codes: Vec::new(),
        };
        admin.enrol_second_factor(&server);
        failed.extend(admin.fuzz(dir, &server, &ending));
    }
    assert!(
        failed.is_empty(),
        "{}\n--- server log\n{}",
        failed.join("\n"),
        server.log()
    );
}

/// `QUERY` (and any method Rocket 0.5 cannot parse) is answered before routes and fairings
/// run; on a known path it is a 405 naming the methods there, elsewhere still a 400.
#[test]
fn a_method_rocket_cannot_parse_is_a_405_with_allow_on_a_known_path() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let data = data_dir(dir);
    let server = Server::start_serve(dir, &["--data-dir", path_str(&data)], &FAST_ARGON2);
    let send = |line: &str| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        let request = format!("{line} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer.to_ascii_lowercase()
    };
    let known = send("QUERY /api/tokens/balance");
    assert!(known.starts_with("http/1.1 405"), "{known}");
    assert!(known.contains("allow: get, head, options"), "{known}");
    assert!(known.contains("application/problem+json"), "{known}");
    let posted = send("PROPFIND /api/auth/login");
    assert!(posted.contains("allow: post, options"), "{posted}");
    let unknown = send("QUERY /api/no-such-thing");
    assert!(unknown.starts_with("http/1.1 400"), "{unknown}");
}
