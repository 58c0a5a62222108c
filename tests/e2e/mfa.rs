//! Two-factor sign-in against the real binary: an admin made with the CLI is refused by
//! the admin API until they enrol, then signs in with password and code; the operator's
//! `users mfa-reset` turns it off, audited; the secret never reaches the server's log.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::harness::*;

const ADMIN: &str = "boss@example.com";

fn code_at(secret: &str, secs: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new().with_secret(bytes).build().unwrap();
    totp.generate(secs).to_string()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn admin_users_status(session: &Session, token: &str) -> (StatusCode, Value) {
    let response = session
        .http
        .get(session.url("/api/admin/users"))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn a_cli_admin_enrols_signs_in_with_a_code_and_the_operator_can_reset_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let data = data_dir(dir);
    let d = path_str(&data);
    let line = format!("{PASSWORD}\n");
    let create = [
        "--data-dir",
        d,
        "users",
        "create",
        "--email",
        ADMIN,
        "--admin",
    ];
    let out = cli(dir, &create, Some(&line));
    assert!(out.status.success(), "{out}");

    // The default settings: admins need a second factor.
    let mut session = Session::start(dir, &[], ADMIN);
    let (status, body) = admin_users_status(&session, &session.token);
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["type"], "urn:audiostudio:problem:mfa-required",
        "{body}"
    );
    let setup = json!({ "password": PASSWORD });
    let setup = session.expect_ok(session.authed_post("/api/auth/mfa/totp/setup", &setup));
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let confirm = json!({ "code": code_at(&secret, now_secs()) });
    let codes = session.expect_ok(session.authed_post("/api/auth/mfa/totp/confirm", &confirm));
    assert_eq!(
        codes["recovery_codes"].as_array().unwrap().len(),
        10,
        "{codes}"
    );
    assert_eq!(
        admin_users_status(&session, &session.token).0,
        StatusCode::OK
    );

    // Password, then the next step's code (the current one was spent on confirming).
    let login = json!({ "email": ADMIN, "password": PASSWORD });
    let challenge = session.expect_ok(
        session
            .http
            .post(session.url("/api/auth/login"))
            .json(&login),
    );
    assert_eq!(challenge["mfa_required"], true, "{challenge}");
    assert!(challenge.get("access_token").is_none(), "{challenge}");
    let verify =
        json!({ "mfa_token": challenge["mfa_token"], "code": code_at(&secret, now_secs() + 30) });
    let signed_in = session.expect_ok(
        session
            .http
            .post(session.url("/api/auth/mfa/verify"))
            .json(&verify),
    );
    let token = signed_in["access_token"].as_str().unwrap().to_owned();
    assert_eq!(admin_users_status(&session, &token).0, StatusCode::OK);

    let out = cli(dir, &["--data-dir", d, "users", "mfa-reset", ADMIN], None);
    assert!(out.status.success(), "{out}");
    let audited: i64 = db(dir)
        .query_row(
            "SELECT COUNT(*) FROM audit_logs WHERE action = 'auth.mfa_reset' AND user_agent = 'audiostudio-cli'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 1);
    let (status, body) = admin_users_status(&session, &token);
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let again = session.expect_ok(
        session
            .http
            .post(session.url("/api/auth/login"))
            .json(&login),
    );
    assert!(again["access_token"].is_string(), "{again}");
    let out = cli(dir, &["--data-dir", d, "users", "mfa-reset", ADMIN], None);
    assert_eq!(out.status.code(), Some(1), "{out}");

    assert!(!session.log().contains(&secret), "the secret is in the log");
    session.stop_ok();
}
