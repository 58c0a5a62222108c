//! The admin console's sign-in: the cookie, who may sign in, what the cookie grants, the
//! same-origin rule for changes, the timeouts, and sessions ending with the admin's rights.

use rocket::http::Status;
use serde_json::{Value, json};

use crate::admin_helpers::*;
use crate::helpers::*;

fn without_request_id(reply: &Reply) -> Value {
    let mut body = reply.body.clone();
    body.as_object_mut().unwrap().remove("request_id");
    body
}

#[rocket::async_test]
async fn signing_in_sets_an_opaque_strict_cookie_and_me_says_who_and_until_when() {
    let app = spawn_app().await;
    let (_, admin_id) = admin(&app).await;
    let reply = console_login(&app, "root@example.com", PASSWORD).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    let set = reply.header("set-cookie").unwrap();
    let re = regex::Regex::new(
        r"^audiostudio_admin=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/admin; Secure$",
    )
    .unwrap();
    assert!(re.is_match(set), "{set}");
    assert_eq!(reply.body["user"]["id"], admin_id.as_str());
    assert_eq!(reply.body["user"]["role"], "admin");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let cookie = cookie_of(&reply);
    // Only the token's hash is stored.
    assert!(!app.snapshot().contains(&cookie));
    let stored: Vec<String> = app.column("SELECT token_hash FROM admin_console_sessions");
    assert_eq!(
        stored,
        [audiostudio::platform::secret_token::token_hash(&cookie)]
    );
    let (action, actor, _, _) = last_audit(&app);
    assert_eq!(
        (action.as_str(), actor.as_deref()),
        ("admin.console_login", Some(admin_id.as_str()))
    );

    let me = cget(&app, "/admin/api/me", &cookie).await;
    assert_eq!(me.status, Status::Ok, "{}", me.body);
    assert_eq!(me.body["user"]["email"], "root@example.com");
    assert!(me.body["expires_at"].is_string() && me.body["idle_expires_at"].is_string());
    console_send(&app, "GET", "/admin/api/me", None, None, &[])
        .await
        .assert_problem(401);
    cget(&app, "/admin/api/me", "not-a-session")
        .await
        .assert_problem(401);
}

#[rocket::async_test]
async fn a_user_who_is_not_an_admin_gets_the_same_401_as_a_wrong_password() {
    let app = spawn_app().await;
    admin(&app).await;
    app.register("ada@example.com").await;
    let wrong = console_login(&app, "root@example.com", "not the password at all").await;
    let user = console_login(&app, "ada@example.com", PASSWORD).await;
    let unknown = console_login(&app, "nobody@example.com", PASSWORD).await;
    wrong.assert_problem(401);
    assert_eq!(without_request_id(&wrong), without_request_id(&user));
    assert_eq!(without_request_id(&wrong), without_request_id(&unknown));
    assert!(user.header("set-cookie").is_none());
    let second = app.register("second@example.com").await;
    let second_id = second["user"]["id"].as_str().unwrap();
    app.promote(second_id);
    app.db()
        .execute(
            "UPDATE users SET status = 'disabled' WHERE id = ?1",
            [second_id],
        )
        .unwrap();
    let disabled = console_login(&app, "second@example.com", PASSWORD).await;
    assert_eq!(without_request_id(&wrong), without_request_id(&disabled));
    assert_eq!(app.count("SELECT COUNT(*) FROM admin_console_sessions"), 0);
    let (action, _, _, details) = last_audit(&app);
    assert_eq!(
        (action.as_str(), details["reason"].as_str()),
        ("admin.console_login_refused", Some("disabled"))
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_logs WHERE action = 'admin.console_login_refused'"),
        2
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_logs WHERE action = 'auth.login_failed'"),
        2,
        "the wrong password and the unknown email"
    );
}

#[rocket::async_test]
async fn the_console_sign_in_counts_against_the_account_lockout() {
    let app = spawn_app().await;
    admin(&app).await;
    for _ in 0..5 {
        console_login(&app, "root@example.com", "wrong wrong wrong")
            .await
            .assert_problem(401);
    }
    console_login(&app, "root@example.com", PASSWORD)
        .await
        .assert_problem(429);
    app.login("root@example.com", PASSWORD)
        .await
        .assert_problem(429);
}

#[rocket::async_test]
async fn the_cookie_grants_nothing_under_api_and_a_bearer_token_nothing_under_admin_api() {
    let app = spawn_app().await;
    let (cookie, token, _) = console_admin(&app).await;
    let mut request = app.client.get("/api/admin/users");
    request = request.header(rocket::http::Header::new(
        "Cookie",
        format!("audiostudio_admin={cookie}"),
    ));
    Reply::from(request.dispatch().await)
        .await
        .assert_problem(401);
    let bearer = [("Authorization", format!("Bearer {token}"))];
    let headers: Vec<(&str, &str)> = bearer.iter().map(|(n, v)| (*n, v.as_str())).collect();
    console_send(&app, "GET", "/admin/api/users", None, None, &headers)
        .await
        .assert_problem(401);
    assert_eq!(
        app.get("/api/admin/users", Some(&token)).await.status,
        Status::Ok
    );
    assert_eq!(
        cget(&app, "/admin/api/users", &cookie).await.status,
        Status::Ok
    );
}

/// Cookie mutations of every kind, `{ada}` for the user acted on.
const CHANGES: &[&str] = &[
    "/admin/api/logout",
    "/admin/api/users/{ada}/disable",
    "/admin/api/users/{ada}/role",
    "/admin/api/users/{ada}/tokens/grant",
    "/admin/api/users/{ada}/sessions/revoke-all",
];

#[rocket::async_test]
async fn a_cookie_change_from_another_origin_or_not_json_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (cookie, _, _) = console_admin(&app).await;
    let (_, ada) = user(&app, "ada@example.com").await;
    let before = app.snapshot();
    let body = json!({ "reason": "spam" }).to_string();
    let refused: [&[(&str, &str)]; 6] = [
        &[("Origin", "https://evil.example.net")],
        &[("Origin", ORIGIN), ("Sec-Fetch-Site", "cross-site")],
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Origin", ORIGIN), ("Content-Type", "text/plain")],
        &[("Origin", "null")],
        &[],
    ];
    for headers in refused {
        for path in CHANGES.iter().map(|p| p.replace("{ada}", &ada)) {
            let path = path.as_str();
            let reply = console_send(&app, "POST", path, Some(&body), Some(&cookie), headers).await;
            reply.assert_problem(403);
        }
    }
    let login = json!({ "email": "root@example.com", "password": PASSWORD }).to_string();
    console_send(
        &app,
        "POST",
        "/admin/api/login",
        Some(&login),
        None,
        &[("Origin", "https://evil.example.net")],
    )
    .await
    .assert_problem(403);
    console_send(
        &app,
        "POST",
        "/admin/api/login",
        Some(&login),
        None,
        &[("Origin", ORIGIN), ("Content-Type", "text/plain")],
    )
    .await
    .assert_problem(403);
    assert_eq!(app.snapshot(), before);
    // Sec-Fetch-Site: same-origin alone will do, and so will the request's own host.
    let same = console_send(
        &app,
        "POST",
        "/admin/api/login",
        Some(&login),
        None,
        &[("Sec-Fetch-Site", "same-origin")],
    )
    .await;
    assert_eq!(same.status, Status::Ok, "{}", same.body);
    let host = [
        ("Origin", "http://127.0.0.1:8000"),
        ("Host", "127.0.0.1:8000"),
    ];
    let own = console_send(
        &app,
        "POST",
        "/admin/api/logout",
        Some("{}"),
        Some(&cookie),
        &host,
    )
    .await;
    assert_eq!(own.status, Status::NoContent, "{}", own.body);
}

#[rocket::async_test]
async fn an_unused_session_ends_after_the_idle_timeout_and_any_session_after_the_absolute_one() {
    let app = spawn_app().await;
    let (cookie, _, _) = console_admin(&app).await;
    // Used every 29 minutes it lives on...
    for _ in 0..3 {
        app.clock.advance_secs(29 * 60);
        assert_eq!(
            cget(&app, "/admin/api/me", &cookie).await.status,
            Status::Ok
        );
    }
    // ...unused for 31 it ends.
    app.clock.advance_secs(31 * 60);
    cget(&app, "/admin/api/me", &cookie)
        .await
        .assert_problem(401);

    let again = console_login(&app, "root@example.com", PASSWORD).await;
    let cookie = cookie_of(&again);
    for _ in 0..26 {
        app.clock.advance_secs(29 * 60);
        cget(&app, "/admin/api/me", &cookie).await;
    }
    // 26 x 29 minutes is past 12 hours.
    cget(&app, "/admin/api/me", &cookie)
        .await
        .assert_problem(401);
}

#[rocket::async_test]
async fn demotion_disabling_and_a_password_change_end_the_console_at_once() {
    let app = spawn_app().await;
    let (cookie, token, id) = console_admin(&app).await;
    app.db()
        .execute("UPDATE users SET role = 'user' WHERE id = ?1", [&id])
        .unwrap();
    cget(&app, "/admin/api/me", &cookie)
        .await
        .assert_problem(401);
    app.promote(&id);
    // The session is not revived by promoting the account again? It is: it never ended.
    assert_eq!(
        cget(&app, "/admin/api/me", &cookie).await.status,
        Status::Ok
    );
    app.db()
        .execute("UPDATE users SET status = 'disabled' WHERE id = ?1", [&id])
        .unwrap();
    cget(&app, "/admin/api/users", &cookie)
        .await
        .assert_problem(401);
    app.db()
        .execute("UPDATE users SET status = 'active' WHERE id = ?1", [&id])
        .unwrap();

    let change = json!({ "current_password": PASSWORD, "new_password": "a brand new secret" });
    let reply = app
        .post("/api/auth/change-password", change, Some(&token))
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    cget(&app, "/admin/api/me", &cookie)
        .await
        .assert_problem(401);
}

#[rocket::async_test]
async fn signing_out_ends_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    let (cookie, _, id) = console_admin(&app).await;
    let out = cpost(&app, "/admin/api/logout", json!({}), &cookie).await;
    assert_eq!(out.status, Status::NoContent);
    assert_eq!(
        out.header("set-cookie"),
        Some("audiostudio_admin=; HttpOnly; SameSite=Strict; Path=/admin; Secure; Max-Age=0")
    );
    let (action, actor, _, _) = last_audit(&app);
    assert_eq!((action.as_str(), actor), ("admin.console_logout", Some(id)));
    cget(&app, "/admin/api/me", &cookie)
        .await
        .assert_problem(401);
    cpost(&app, "/admin/api/logout", json!({}), &cookie)
        .await
        .assert_problem(401);
}
