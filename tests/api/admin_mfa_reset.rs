//! `POST users/{id}/mfa-reset` (issue 13): an admin turns off another account's two-factor
//! sign-in, as `users mfa-reset` does; the user detail shows the account's state.

use rocket::http::{ContentType, Header, Status};
use serde_json::{Value, json};

use crate::admin_helpers::*;
use crate::helpers::*;
use crate::mfa;

const ADA: &str = "ada@example.com";

/// Setup and confirm for the caller of `token` (the MFA tests' flow): its recovery codes.
async fn enrol(app: &TestApp, token: &str) -> Vec<String> {
    mfa::enrol(app, token).await.1
}

async fn detail(app: &TestApp, token: &str, id: &str) -> Value {
    let reply = app
        .get(&format!("/api/admin/users/{id}"), Some(token))
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.body
}

async fn reset(app: &TestApp, token: &str, id: &str) -> Reply {
    app.post(
        &format!("/api/admin/users/{id}/mfa-reset"),
        json!({}),
        Some(token),
    )
    .await
}

#[rocket::async_test]
async fn the_user_detail_shows_whether_two_factor_sign_in_is_on() {
    let app = spawn_app().await;
    let (admin_token, _) = admin(&app).await;
    let (token, ada) = user(&app, ADA).await;
    let off = detail(&app, &admin_token, &ada).await;
    assert_eq!(off["mfa_enabled"], false, "{off}");
    assert_eq!(
        off["mfa"],
        json!({"enabled": false, "factor": null, "enrolled_at": null, "recovery_codes_left": null})
    );

    let codes = enrol(&app, &token).await;
    let on = detail(&app, &admin_token, &ada).await;
    assert_eq!(on["mfa_enabled"], true, "{on}");
    assert_eq!(on["mfa"]["factor"], "totp");
    assert!(on["mfa"]["enrolled_at"].is_string(), "{on}");
    assert_eq!(on["mfa"]["recovery_codes_left"], 10);

    let challenge = app.login(ADA, PASSWORD).await;
    let verify = app
        .post(
            "/api/auth/mfa/verify",
            json!({ "mfa_token": challenge.body["mfa_token"], "recovery_code": codes[0] }),
            None,
        )
        .await;
    assert_eq!(verify.status, Status::Ok, "{}", verify.body);
    let used = detail(&app, &admin_token, &ada).await;
    assert_eq!(used["mfa"]["recovery_codes_left"], 9);
}

#[rocket::async_test]
async fn an_admin_resets_a_users_two_factor_sign_in_from_the_console_and_it_is_audited() {
    let app = spawn_app().await;
    let (cookie, admin_token, root) = console_admin(&app).await;
    let (token, ada) = user(&app, ADA).await;
    enrol(&app, &token).await;
    assert_eq!(app.login(ADA, PASSWORD).await.body["mfa_required"], true);

    let request = app
        .client
        .post(format!("/admin/api/users/{ada}/mfa-reset"))
        .header(ContentType::JSON)
        .header(Header::new("Origin", ORIGIN))
        .header(Header::new("User-Agent", "console-test/1.0"))
        .header(Header::new("Cookie", format!("audiostudio_admin={cookie}")))
        .remote("198.51.100.7:5000".parse().unwrap())
        .body("{}");
    let reply = Reply::from(request.dispatch().await).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["id"], ada.as_str());
    assert_eq!(reply.body["mfa_enabled"], false, "{}", reply.body);
    assert_eq!(reply.body["mfa"]["enabled"], false);

    let row = last_audit_row(&app);
    assert_eq!(
        row,
        (
            "auth.mfa_reset".into(),
            root,
            ada.clone(),
            "198.51.100.7".into(),
            "console-test/1.0".into()
        )
    );
    let (subject, _) = app.last_email_to(ADA).unwrap();
    assert_eq!(subject, "Two-factor sign-in was reset");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mfa_recovery_codes WHERE used_at IS NULL"),
        0
    );

    // The password alone signs them in now; their existing session was left alone.
    let login = app.login(ADA, PASSWORD).await;
    assert!(login.body["access_token"].is_string(), "{}", login.body);
    let profile = app.get("/api/auth/profile", Some(&token)).await;
    assert_eq!(profile.status, Status::Ok, "{}", profile.body);
    assert_eq!(profile.body["mfa_enabled"], false);

    // Nothing left to reset: 409 under both bases, nothing more recorded.
    let before = app.snapshot();
    reset(&app, &admin_token, &ada).await.assert_problem(409);
    cpost(
        &app,
        &format!("/admin/api/users/{ada}/mfa-reset"),
        json!({}),
        &cookie,
    )
    .await
    .assert_problem(409);
    assert_eq!(app.snapshot(), before);
}

#[rocket::async_test]
async fn an_enrolment_never_confirmed_is_no_two_factor_sign_in_to_reset() {
    let app = spawn_app().await;
    let (admin_token, _) = admin(&app).await;
    let (token, ada) = user(&app, ADA).await;
    reset(&app, &admin_token, &ada).await.assert_problem(409);
    let setup = app
        .post(
            "/api/auth/mfa/totp/setup",
            json!({ "password": PASSWORD }),
            Some(&token),
        )
        .await;
    assert_eq!(setup.status, Status::Ok, "{}", setup.body);
    let before = app.snapshot();
    let refused = reset(&app, &admin_token, &ada).await;
    refused.assert_problem(409);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("no two-factor"),
        "{}",
        refused.body
    );
    assert_eq!(app.snapshot(), before);
    assert!(
        app.last_email_to(ADA)
            .is_none_or(|(s, _)| !s.contains("reset"))
    );
}

#[rocket::async_test]
async fn an_admin_cannot_reset_their_own_two_factor_sign_in_here() {
    let app = spawn_app().await;
    let (admin_token, root) = admin(&app).await;
    enrol(&app, &admin_token).await;
    let before = app.snapshot();
    let refused = reset(&app, &admin_token, &root).await;
    refused.assert_problem(409);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("/api/auth/mfa/totp/disable"),
        "{}",
        refused.body
    );
    assert_eq!(app.snapshot(), before);
    assert_eq!(detail(&app, &admin_token, &root).await["mfa_enabled"], true);
}

#[rocket::async_test]
async fn with_admins_needing_two_factor_a_password_only_console_session_cannot_reset() {
    let app = spawn_app_with(|f| {
        f.merge(rocket::figment::providers::Serialized::global(
            "mfa_required_for_admins",
            true,
        ))
    })
    .await;
    let (cookie, _, _) = console_admin(&app).await;
    let (token, ada) = user(&app, ADA).await;
    enrol(&app, &token).await;
    let refused = cpost(
        &app,
        &format!("/admin/api/users/{ada}/mfa-reset"),
        json!({}),
        &cookie,
    )
    .await;
    refused.assert_problem(403);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM user_mfa WHERE confirmed_at IS NOT NULL"),
        1
    );
}
