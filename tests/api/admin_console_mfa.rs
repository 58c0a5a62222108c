//! Two-factor sign-in at the admin console (issues 8 and 13): a password-only console
//! session may only enrol while admins need a second factor; enrolling from the console
//! opens the admin routes to that session; an enrolled admin's sign-in takes a code.

use rocket::figment::providers::Serialized;
use rocket::http::Status;
use serde_json::json;

use crate::admin_helpers::*;
use crate::helpers::*;
use crate::mfa::{code_at, now_secs};

async fn required_app() -> TestApp {
    spawn_app_with(|f| f.merge(Serialized::global("mfa_required_for_admins", true))).await
}

#[rocket::async_test]
async fn a_password_only_console_session_can_only_enrol_and_then_works() {
    let app = required_app().await;
    let (cookie, _token, _) = console_admin(&app).await;
    let me = cget(&app, "/admin/api/me", &cookie).await;
    assert_eq!(me.status, Status::Ok, "{}", me.body);
    assert_eq!(me.body["mfa"]["enabled"], false);
    assert_eq!(me.body["mfa"]["enrolment_required"], true);
    let refused = cget(&app, "/admin/api/users", &cookie).await;
    refused.assert_problem(403);
    assert_eq!(refused.body["type"], "urn:audiostudio:problem:mfa-required");
    assert!(refused.body["detail"].as_str().unwrap().contains("enrol"));

    // A wrong password starts nothing.
    let wrong = cpost(
        &app,
        "/admin/api/mfa/setup",
        json!({"password": "not the password"}),
        &cookie,
    )
    .await;
    wrong.assert_problem(422);
    let setup = cpost(
        &app,
        "/admin/api/mfa/setup",
        json!({"password": PASSWORD}),
        &cookie,
    )
    .await;
    assert_eq!(setup.status, Status::Ok, "{}", setup.body);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    assert!(
        setup.body["qr_svg"].as_str().unwrap().starts_with("<svg")
            || setup.body["qr_svg"].as_str().unwrap().starts_with("<?xml")
    );
    // Not on until confirmed: still refused.
    cget(&app, "/admin/api/users", &cookie)
        .await
        .assert_problem(403);
    let bad = cpost(
        &app,
        "/admin/api/mfa/confirm",
        json!({"code": "000000"}),
        &cookie,
    )
    .await;
    bad.assert_problem(422);
    let code = code_at(&secret, now_secs(&app));
    let confirm = cpost(
        &app,
        "/admin/api/mfa/confirm",
        json!({"code": code}),
        &cookie,
    )
    .await;
    assert_eq!(confirm.status, Status::Ok, "{}", confirm.body);
    assert_eq!(confirm.body["recovery_codes"].as_array().unwrap().len(), 10);
    // The code was proved in this session: it may use the admin routes now.
    let listed = cget(&app, "/admin/api/users", &cookie).await;
    assert_eq!(listed.status, Status::Ok, "{}", listed.body);
    let me = cget(&app, "/admin/api/me", &cookie).await;
    assert_eq!(me.body["mfa"]["enabled"], true);
    assert_eq!(me.body["mfa"]["factor"], "totp");
    assert_eq!(me.body["mfa"]["enrolment_required"], false);
    // The secret is never shown again.
    assert!(!me.body.to_string().contains(&secret));
}

#[rocket::async_test]
async fn an_enrolled_admin_signs_in_to_the_console_with_a_code() {
    let app = required_app().await;
    let (cookie, _, _) = console_admin(&app).await;
    let setup = cpost(
        &app,
        "/admin/api/mfa/setup",
        json!({"password": PASSWORD}),
        &cookie,
    )
    .await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let code = code_at(&secret, now_secs(&app));
    let confirm = cpost(
        &app,
        "/admin/api/mfa/confirm",
        json!({"code": code}),
        &cookie,
    )
    .await;
    assert_eq!(confirm.status, Status::Ok, "{}", confirm.body);
    let recovery = confirm.body["recovery_codes"][0]
        .as_str()
        .unwrap()
        .to_owned();

    // The password alone sets no cookie: it answers the challenge.
    let login = console_login(&app, "root@example.com", PASSWORD).await;
    assert_eq!(login.status, Status::Ok, "{}", login.body);
    assert_eq!(login.body["mfa_required"], true);
    assert!(login.header("set-cookie").is_none());
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();
    let verify = |body: serde_json::Value| {
        let app = &app;
        async move {
            let body = body.to_string();
            console_send(
                app,
                "POST",
                "/admin/api/login/verify",
                Some(&body),
                None,
                &[("Origin", ORIGIN)],
            )
            .await
        }
    };
    // The code just used to confirm is refused (used once), a wrong one too.
    let replay = verify(json!({"mfa_token": mfa_token, "code": code})).await;
    replay.assert_problem(401);
    assert!(replay.header("set-cookie").is_none());
    // Cross-origin, the verify step is refused before anything is checked.
    let body = json!({"mfa_token": mfa_token, "code": code}).to_string();
    let cross = console_send(
        &app,
        "POST",
        "/admin/api/login/verify",
        Some(&body),
        None,
        &[("Origin", "https://evil.example")],
    )
    .await;
    cross.assert_problem(403);
    app.clock.advance_secs(30);
    let fresh = code_at(&secret, now_secs(&app));
    let signed_in = verify(json!({"mfa_token": mfa_token, "code": fresh})).await;
    assert_eq!(signed_in.status, Status::Ok, "{}", signed_in.body);
    let cookie = cookie_of(&signed_in);
    assert_eq!(signed_in.body["mfa"]["factor"], "totp");
    let listed = cget(&app, "/admin/api/users", &cookie).await;
    assert_eq!(listed.status, Status::Ok, "{}", listed.body);
    // The challenge is spent.
    verify(json!({"mfa_token": mfa_token, "code": fresh}))
        .await
        .assert_problem(401);

    // A recovery code signs in too, once.
    let again = console_login(&app, "root@example.com", PASSWORD).await;
    let token = again.body["mfa_token"].as_str().unwrap().to_owned();
    let by_recovery = verify(json!({"mfa_token": token, "recovery_code": recovery})).await;
    assert_eq!(by_recovery.status, Status::Ok, "{}", by_recovery.body);
    assert_eq!(by_recovery.body["mfa"]["factor"], "recovery_code");
    let again = console_login(&app, "root@example.com", PASSWORD).await;
    let token = again.body["mfa_token"].as_str().unwrap().to_owned();
    verify(json!({"mfa_token": token, "recovery_code": recovery}))
        .await
        .assert_problem(401);
}
