//! Two-factor sign-in (issue 13): enrolment, the login challenge, replay, recovery codes,
//! lockout, disable, the admin rule and `users mfa-reset`, on the injected clock.

use rocket::figment::providers::Serialized;
use rocket::http::Status;
use serde_json::{Value, json};

use crate::helpers::*;

const EMAIL: &str = "two@example.com";

/// The code of `secret` (base32) for the step holding `secs`, computed by the test.
pub fn code_at(secret: &str, secs: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new().with_secret(bytes).build().unwrap();
    totp.generate(secs).to_string()
}

pub fn now_secs(app: &TestApp) -> u64 {
    u64::try_from(app.clock_now() / 1000).unwrap()
}

/// Moves the app's clock so that it reads `secs` (whole seconds).
fn set_clock(app: &TestApp, secs: u64) {
    let delta = i64::try_from(secs).unwrap() - i64::try_from(now_secs(app)).unwrap();
    app.clock.advance_secs(delta);
}

/// The first whole 30-second step boundary at least `ahead` seconds from now.
fn boundary_after(app: &TestApp, ahead: u64) -> u64 {
    (now_secs(app) + ahead).div_ceil(30) * 30
}

/// Setup and confirm for the caller of `token`: (secret, recovery codes, every response body).
pub async fn enrol(app: &TestApp, token: &str) -> (String, Vec<String>, Vec<String>) {
    let setup = app
        .post(
            "/api/auth/mfa/totp/setup",
            json!({ "password": PASSWORD }),
            Some(token),
        )
        .await;
    assert_eq!(setup.status, Status::Ok, "{}", setup.body);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let code = code_at(&secret, now_secs(app));
    let confirm = app
        .post(
            "/api/auth/mfa/totp/confirm",
            json!({ "code": code }),
            Some(token),
        )
        .await;
    assert_eq!(confirm.status, Status::Ok, "{}", confirm.body);
    let codes: Vec<String> =
        serde_json::from_value(confirm.body["recovery_codes"].clone()).unwrap();
    (secret, codes, vec![confirm.body.to_string()])
}

/// A registered user with two-factor sign-in on: (access token, secret, recovery codes).
async fn enrolled(app: &TestApp, email: &str) -> (String, String, Vec<String>) {
    let (token, _) = user(app, email).await;
    let (secret, codes, _) = enrol(app, &token).await;
    (token, secret, codes)
}

/// Logs in with the right password and returns the challenge token.
async fn challenge(app: &TestApp, email: &str) -> String {
    let reply = app.login(email, PASSWORD).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["mfa_required"], true, "{}", reply.body);
    assert!(reply.body.get("access_token").is_none(), "{}", reply.body);
    assert!(reply.body.get("refresh_token").is_none(), "{}", reply.body);
    reply.body["mfa_token"].as_str().unwrap().to_owned()
}

async fn verify(app: &TestApp, body: Value) -> Reply {
    app.post("/api/auth/mfa/verify", body, None).await
}

async fn verify_code(app: &TestApp, email: &str, code: &str) -> Reply {
    let mfa_token = challenge(app, email).await;
    verify(app, json!({ "mfa_token": mfa_token, "code": code })).await
}

async fn mfa_enabled(app: &TestApp, token: &str) -> bool {
    let profile = app.get("/api/auth/profile", Some(token)).await;
    assert_eq!(profile.status, Status::Ok, "{}", profile.body);
    profile.body["mfa_enabled"].as_bool().unwrap()
}

#[rocket::async_test]
async fn enrolment_needs_a_confirmed_code_and_then_login_needs_one_too() {
    let app = spawn_app().await;
    let (token, _) = user(&app, EMAIL).await;
    let wrong = app
        .post(
            "/api/auth/mfa/totp/setup",
            json!({ "password": "not it at all" }),
            Some(&token),
        )
        .await;
    wrong.assert_problem(422);
    let setup = app
        .post(
            "/api/auth/mfa/totp/setup",
            json!({ "password": PASSWORD }),
            Some(&token),
        )
        .await;
    assert_eq!(setup.status, Status::Ok, "{}", setup.body);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let uri = setup.body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/audiostudio:two%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(setup.body["qr_svg"].as_str().unwrap().contains("<svg"));

    // Not confirmed: nothing changes at login.
    assert!(!mfa_enabled(&app, &token).await);
    let login = app.login(EMAIL, PASSWORD).await;
    assert!(login.body["access_token"].is_string(), "{}", login.body);
    let bad = app
        .post(
            "/api/auth/mfa/totp/confirm",
            json!({ "code": "000000" }),
            Some(&token),
        )
        .await;
    bad.assert_problem(422);
    assert!(!mfa_enabled(&app, &token).await);

    let code = code_at(&secret, now_secs(&app));
    let confirm = app
        .post(
            "/api/auth/mfa/totp/confirm",
            json!({ "code": code }),
            Some(&token),
        )
        .await;
    assert_eq!(confirm.status, Status::Ok, "{}", confirm.body);
    assert_eq!(confirm.body["recovery_codes"].as_array().unwrap().len(), 10);
    assert!(mfa_enabled(&app, &token).await);
    let (subject, _) = app.last_email_to(EMAIL).unwrap();
    assert_eq!(subject, "Two-factor sign-in is on");
    assert!(app.audit_actions().contains(&"auth.mfa_enabled".to_owned()));
    let again = app
        .post(
            "/api/auth/mfa/totp/setup",
            json!({ "password": PASSWORD }),
            Some(&token),
        )
        .await;
    again.assert_problem(409);

    app.clock.advance_secs(30);
    let mfa_token = challenge(&app, EMAIL).await;
    let code = code_at(&secret, now_secs(&app));
    let session = verify(&app, json!({ "mfa_token": mfa_token, "code": code })).await;
    assert_eq!(session.status, Status::Ok, "{}", session.body);
    assert!(session.body["access_token"].is_string(), "{}", session.body);
    let id = session.body["session_id"].as_str().unwrap();
    let factor: Vec<String> = app.column(&format!("SELECT factor FROM sessions WHERE id = '{id}'"));
    assert_eq!(factor, ["totp"]);
    // The challenge is spent with its session.
    let reuse = verify(&app, json!({ "mfa_token": mfa_token, "code": code })).await;
    reuse.assert_problem(401);

    // After setup the secret shows nowhere: no response, no row, no audit detail.
    let everything = [
        confirm.body.to_string(),
        session.body.to_string(),
        reuse.body.to_string(),
        again.body.to_string(),
        app.get("/api/auth/profile", Some(access(&session.body)))
            .await
            .body
            .to_string(),
        app.get("/api/auth/sessions", Some(access(&session.body)))
            .await
            .body
            .to_string(),
        app.snapshot(),
    ]
    .join("\n");
    assert!(!everything.contains(&secret), "the secret leaked");
}

#[rocket::async_test]
async fn a_code_works_one_step_either_side_of_its_own_and_not_beyond() {
    let app = spawn_app().await;
    let (_, secret, _) = enrolled(&app, EMAIL).await;
    let t = boundary_after(&app, 600);
    let code = code_at(&secret, t);
    for outside in [t - 31, t + 60] {
        set_clock(&app, outside);
        verify_code(&app, EMAIL, &code).await.assert_problem(401);
    }
    set_clock(&app, t - 30);
    let early = verify_code(&app, EMAIL, &code).await;
    assert_eq!(early.status, Status::Ok, "T-30 s: {}", early.body);

    let later = t + 600;
    let code = code_at(&secret, later);
    set_clock(&app, later + 59);
    let late = verify_code(&app, EMAIL, &code).await;
    assert_eq!(late.status, Status::Ok, "T+59 s: {}", late.body);
}

#[rocket::async_test]
async fn a_code_is_accepted_once() {
    let app = spawn_app().await;
    let (_, secret, _) = enrolled(&app, EMAIL).await;
    set_clock(&app, boundary_after(&app, 120));
    let code = code_at(&secret, now_secs(&app));
    assert_eq!(verify_code(&app, EMAIL, &code).await.status, Status::Ok);
    let replay = verify_code(&app, EMAIL, &code).await;
    replay.assert_problem(401);
    assert_eq!(
        replay.body["detail"],
        "the code is incorrect or already used"
    );
    // An older step's code is refused too, still inside the skew.
    let older = code_at(&secret, now_secs(&app) - 30);
    verify_code(&app, EMAIL, &older).await.assert_problem(401);
    assert!(app.audit_actions().contains(&"auth.mfa_failed".to_owned()));
}

#[rocket::async_test]
async fn a_recovery_code_works_once_and_its_owner_is_told() {
    let app = spawn_app().await;
    let (_, _, codes) = enrolled(&app, EMAIL).await;
    let mfa_token = challenge(&app, EMAIL).await;
    let typed = codes[3].to_uppercase();
    let session = verify(
        &app,
        json!({ "mfa_token": mfa_token, "recovery_code": typed }),
    )
    .await;
    assert_eq!(session.status, Status::Ok, "{}", session.body);
    let id = session.body["session_id"].as_str().unwrap();
    let factor: Vec<String> = app.column(&format!("SELECT factor FROM sessions WHERE id = '{id}'"));
    assert_eq!(factor, ["recovery_code"]);
    let (subject, text) = app.last_email_to(EMAIL).unwrap();
    assert_eq!(subject, "A recovery code was used");
    assert!(text.contains("9 unused codes are left"), "{text}");
    assert!(
        app.audit_actions()
            .contains(&"auth.mfa_recovery_code_used".to_owned())
    );

    let mfa_token = challenge(&app, EMAIL).await;
    let again = verify(
        &app,
        json!({ "mfa_token": mfa_token, "recovery_code": codes[3] }),
    )
    .await;
    again.assert_problem(401);
    let both = json!({ "mfa_token": mfa_token, "code": "123456", "recovery_code": codes[4] });
    verify(&app, both).await.assert_problem(422);
    verify(&app, json!({ "mfa_token": mfa_token }))
        .await
        .assert_problem(422);
    let other = verify(
        &app,
        json!({ "mfa_token": mfa_token, "recovery_code": codes[4] }),
    )
    .await;
    assert_eq!(other.status, Status::Ok, "{}", other.body);
}

#[rocket::async_test]
async fn wrong_codes_count_toward_the_account_lockout() {
    let app = spawn_app_with(|f| f.merge(Serialized::global("login_max_failures", 3))).await;
    let (_, secret, _) = enrolled(&app, EMAIL).await;
    set_clock(&app, boundary_after(&app, 120));
    // Each round logs in again with the right password: that does not reset the count.
    for _ in 0..3 {
        verify_code(&app, EMAIL, "000000").await.assert_problem(401);
    }
    let (subject, _) = app.last_email_to(EMAIL).unwrap();
    assert_eq!(subject, "Your account was locked after failed logins");
    app.login(EMAIL, PASSWORD).await.assert_problem(429);
    let locked: Vec<Option<i64>> = app.column("SELECT locked_until FROM users");
    assert!(locked[0].is_some());
    app.clock.advance_secs(15 * 60 + 1);
    let right_later = code_at(&secret, now_secs(&app));
    let reply = verify_code(&app, EMAIL, &right_later).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
}

#[rocket::async_test]
async fn a_challenge_that_is_locked_out_is_refused_without_checking() {
    let app = spawn_app_with(|f| f.merge(Serialized::global("login_max_failures", 2))).await;
    let (_, secret, _) = enrolled(&app, EMAIL).await;
    set_clock(&app, boundary_after(&app, 120));
    let mfa_token = challenge(&app, EMAIL).await;
    for _ in 0..2 {
        let wrong = verify(&app, json!({ "mfa_token": mfa_token, "code": "999999" })).await;
        wrong.assert_problem(401);
    }
    let code = code_at(&secret, now_secs(&app));
    let right = verify(&app, json!({ "mfa_token": mfa_token, "code": code })).await;
    right.assert_problem(429);
}

#[rocket::async_test]
async fn disabling_needs_both_the_password_and_a_code() {
    let app = spawn_app().await;
    let (token, secret, _) = enrolled(&app, EMAIL).await;
    set_clock(&app, boundary_after(&app, 120));
    let code = code_at(&secret, now_secs(&app));
    let path = "/api/auth/mfa/totp/disable";
    let no_password = app
        .post(
            path,
            json!({ "password": "wrong password here", "code": code }),
            Some(&token),
        )
        .await;
    no_password.assert_problem(422);
    assert!(
        no_password.body["errors"]["password"].is_array(),
        "{}",
        no_password.body
    );
    let no_code = app
        .post(
            path,
            json!({ "password": PASSWORD, "code": "000000" }),
            Some(&token),
        )
        .await;
    no_code.assert_problem(422);
    assert!(
        no_code.body["errors"]["code"].is_array(),
        "{}",
        no_code.body
    );
    assert!(mfa_enabled(&app, &token).await);

    let both = app
        .post(
            path,
            json!({ "password": PASSWORD, "code": code }),
            Some(&token),
        )
        .await;
    assert_eq!(both.status, Status::Ok, "{}", both.body);
    assert!(!mfa_enabled(&app, &token).await);
    assert!(app.login(EMAIL, PASSWORD).await.body["access_token"].is_string());
    let (subject, _) = app.last_email_to(EMAIL).unwrap();
    assert_eq!(subject, "Two-factor sign-in is off");
    assert!(
        app.audit_actions()
            .contains(&"auth.mfa_disabled".to_owned())
    );
    let again = app
        .post(
            path,
            json!({ "password": PASSWORD, "code": code }),
            Some(&token),
        )
        .await;
    again.assert_problem(409);
}

#[rocket::async_test]
async fn admins_without_a_second_factor_are_refused_by_the_admin_api() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("mfa_required_for_admins", true))).await;
    let (token, _) = admin(&app).await;
    let (member, _) = user(&app, "member@example.com").await;
    let refused = app.get("/api/admin/users", Some(&token)).await;
    refused.assert_problem(403);
    assert_eq!(refused.body["type"], "urn:audiostudio:problem:mfa-required");
    assert_eq!(
        refused.body["detail"],
        "enrol in two-factor authentication at /api/auth/mfa/totp/setup (or in the console)"
    );
    let older = access(&app.login("root@example.com", PASSWORD).await.body).to_owned();

    // Enrolling proves a code in this session: it may use the admin API from now on.
    let (secret, _, _) = enrol(&app, &token).await;
    let listed = app.get("/api/admin/users", Some(&token)).await;
    assert_eq!(listed.status, Status::Ok, "{}", listed.body);
    // A session opened with the password alone before enrolment may not.
    let stale = app.get("/api/admin/users", Some(&older)).await;
    stale.assert_problem(403);
    assert!(
        stale.body["detail"]
            .as_str()
            .unwrap()
            .contains("log in again")
    );
    app.clock.advance_secs(30);
    let code = code_at(&secret, now_secs(&app));
    let fresh = verify_code(&app, "root@example.com", &code).await;
    let fresh = app.get("/api/admin/users", Some(access(&fresh.body))).await;
    assert_eq!(fresh.status, Status::Ok, "{}", fresh.body);
    // Members get the plain 403 as before.
    let member = app.get("/api/admin/users", Some(&member)).await;
    member.assert_problem(403);
    assert_ne!(member.body["type"], "urn:audiostudio:problem:mfa-required");
}

#[rocket::async_test]
async fn users_mfa_reset_turns_it_off_and_is_audited() {
    let app = spawn_app().await;
    let (token, _, _) = enrolled(&app, EMAIL).await;
    let out = audiostudio_command(app.dir.path())
        .args(["users", "mfa-reset", EMAIL])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!mfa_enabled(&app, &token).await);
    let actor: Vec<Option<String>> =
        app.column("SELECT user_agent FROM audit_logs WHERE action = 'auth.mfa_reset'");
    assert_eq!(actor, [Some("audiostudio-cli".to_owned())]);
    let (subject, _) = app.last_email_to(EMAIL).unwrap();
    assert_eq!(subject, "Two-factor sign-in was reset");
    assert!(app.login(EMAIL, PASSWORD).await.body["access_token"].is_string());
    assert_eq!(app.count("SELECT COUNT(*) FROM mfa_recovery_codes"), 0);

    let again = audiostudio_command(app.dir.path())
        .args(["users", "mfa-reset", EMAIL])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let nobody = audiostudio_command(app.dir.path())
        .args(["users", "mfa-reset", "nobody@example.com"])
        .output()
        .unwrap();
    assert_eq!(nobody.status.code(), Some(1));
}

#[rocket::async_test]
async fn our_codes_are_the_ones_pyotp_computes() {
    ensure_python_tools();
    let app = spawn_app().await;
    let (token, _) = user(&app, EMAIL).await;
    let setup = app
        .post(
            "/api/auth/mfa/totp/setup",
            json!({ "password": PASSWORD }),
            Some(&token),
        )
        .await;
    let uri = setup.body["otpauth_uri"].as_str().unwrap();
    let now = now_secs(&app);
    let times: Vec<u64> = vec![now, 59, 1_111_111_109, 2_000_000_000, now + 30];
    let script = "import sys, pyotp\n\
                  t = pyotp.parse_uri(sys.argv[1])\n\
                  print(t.issuer, t.name, t.digits, t.interval, t.digest().name)\n\
                  for s in sys.argv[2:]: print(t.at(int(s)))";
    let mut args = vec!["-c".to_owned(), script.to_owned(), uri.to_owned()];
    args.extend(times.iter().map(u64::to_string));
    let out = std::process::Command::new("python3")
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("audiostudio two@example.com 6 30 sha1"));
    let secret = setup.body["secret"].as_str().unwrap();
    let theirs: Vec<&str> = lines.collect();
    let ours: Vec<String> = times.iter().map(|t| code_at(secret, *t)).collect();
    assert_eq!(theirs, ours);
    // And the server accepts pyotp's code for now.
    let confirm = app
        .post(
            "/api/auth/mfa/totp/confirm",
            json!({ "code": theirs[0] }),
            Some(&token),
        )
        .await;
    assert_eq!(confirm.status, Status::Ok, "{}", confirm.body);
}

#[rocket::async_test]
async fn a_password_changed_after_the_challenge_voids_it() {
    let app = spawn_app().await;
    let (token, secret, _) = enrolled(&app, EMAIL).await;
    set_clock(&app, boundary_after(&app, 120));
    let mfa_token = challenge(&app, EMAIL).await;
    let change =
        json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase 7" });
    let changed = app
        .post("/api/auth/change-password", change, Some(&token))
        .await;
    assert_eq!(changed.status, Status::Ok, "{}", changed.body);
    let code = code_at(&secret, now_secs(&app));
    let stale = verify(&app, json!({ "mfa_token": mfa_token, "code": code })).await;
    stale.assert_problem(401);
    assert!(
        stale.body["detail"].as_str().unwrap().contains("challenge"),
        "{}",
        stale.body
    );
    // The sessions list shows how each session signed in.
    let sessions = app.get("/api/auth/sessions", Some(&token)).await;
    assert_eq!(
        sessions.body["sessions"][0]["factor"], "totp",
        "{}",
        sessions.body
    );
}

#[rocket::async_test]
async fn verify_shares_the_per_ip_login_limit() {
    let limit =
        |f: rocket::figment::Figment| f.merge(Serialized::global("rate_limit_login_per_minute", 3));
    let app = spawn_app_with(limit).await;
    let (_, _, _) = enrolled(&app, EMAIL).await;
    let mfa_token = challenge(&app, EMAIL).await;
    for _ in 0..2 {
        let wrong = verify(&app, json!({ "mfa_token": mfa_token, "code": "000000" })).await;
        wrong.assert_problem(401);
    }
    let limited = verify(&app, json!({ "mfa_token": mfa_token, "code": "000000" })).await;
    limited.assert_problem(429);
    // The per-IP limit (3 a minute), not the account's lockout (5 failures).
    assert_eq!(limited.header("ratelimit-policy"), Some("3;w=60"));
}
