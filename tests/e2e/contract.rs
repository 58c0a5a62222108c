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

const USER: &str = "contract-user@example.com";
const ADMIN: &str = "contract-admin@example.com";

/// Limits far above what the run sends, so routes answer their real results, not 429.
const HIGH_LIMITS: [(&str, &str); 11] = [
    ("ROCKET_RATE_LIMIT_LOGIN_PER_MINUTE", "100000"),
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

/// Operations that end the caller's session: fuzzed last, once nothing else needs the token.
const SESSION_ENDING: &str = "^/api/auth/(logout|logout-all|change-password)$";

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

/// `st run` against `server` with `token`, `filter` selecting operations; fails with its output.
fn schemathesis(dir: &Path, server: &Server, token: &str, who: &str, filter: &[&str]) -> String {
    let examples = env_or("AUDIOSTUDIO_CONTRACT_EXAMPLES", "8");
    let seed = env_or("AUDIOSTUDIO_CONTRACT_SEED", "1");
    let auth = format!("Authorization: Bearer {token}");
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; sys.exit(schemathesis())",
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
    assert!(
        output.status.success(),
        "schemathesis as {who} found failures (seed {seed}):\n{text}\n--- server log\n{}",
        server.log()
    );
    text
}

fn login(server: &Server, email: &str) -> String {
    let body = json!({ "email": email, "password": PASSWORD });
    let answer = server.expect_ok(server.http.post(server.url("/api/auth/login")).json(&body));
    answer["access_token"]
        .as_str()
        .expect("access_token")
        .into()
}

/// Enrols `token`'s account in two-factor sign-in (admins use the admin API only from a
/// session with a second factor); the session `token` belongs to counts as having it.
fn enrol_second_factor(server: &Server, token: &str) {
    let setup = json!({ "password": PASSWORD });
    let request = server.http.post(server.url("/api/auth/mfa/totp/setup"));
    let setup = server.expect_ok(request.bearer_auth(token).json(&setup));
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
    let request = server.http.post(server.url("/api/auth/mfa/totp/confirm"));
    server.expect_ok(request.bearer_auth(token).json(&confirm));
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

    let only = std::env::var("AUDIOSTUDIO_CONTRACT_AS").ok();
    let runs = |who: &str| only.as_deref().is_none_or(|o| o == who);
    let keep_session = ["--exclude-path-regex", SESSION_ENDING];
    if runs("admin") {
        let token = login(&server, ADMIN);
        enrol_second_factor(&server, &token);
        schemathesis(dir, &server, &token, "admin", &keep_session);
    }
    if runs("user") {
        let token = login(&server, USER);
        schemathesis(dir, &server, &token, "user", &keep_session);
        let ending = ["--include-path-regex", SESSION_ENDING];
        schemathesis(dir, &server, &token, "user", &ending);
    }
}
