//! Bad input on every route gets a 4xx problem, never a 5xx, and changes nothing stored.

use serde_json::json;

use crate::helpers::*;

/// Every route that takes a JSON body, and whether it needs a bearer token.
const JSON_ROUTES: &[(&str, &str, bool)] = &[
    ("POST", "/api/auth/register", false),
    ("POST", "/api/auth/login", false),
    ("POST", "/api/auth/refresh", false),
    ("PUT", "/api/auth/profile", true),
    ("POST", "/api/auth/change-password", true),
    ("POST", "/api/auth/request-password-reset", false),
    ("POST", "/api/auth/reset-password", false),
    ("POST", "/api/auth/verify-email", false),
];

fn structurally_bad_bodies() -> Vec<(&'static str, String, u16)> {
    vec![
        ("malformed JSON", r#"{"ema"#.to_owned(), 400),
        ("not JSON at all", "email=a@b.co&password=x".to_owned(), 400),
        ("empty body", String::new(), 400),
        ("stray comma", r#"{, "password": "x"}"#.to_owned(), 400),
        ("single quotes", "{'password': 'x'}".to_owned(), 400),
        ("an array", "[]".to_owned(), 422),
        ("null", "null".to_owned(), 422),
        ("a number", "42".to_owned(), 422),
        ("wrong types", r#"{"email": 5, "password": true, "token": [], "refresh_token": {}, "new_password": 1, "current_password": null, "display_name": 7, "bio": [], "avatar_url": 1, "preferences": "x"}"#.to_owned(), 422),
        ("unknown field", r#"{"role": "admin"}"#.to_owned(), 422),
        ("oversized", json!({ "email": "a@b.co", "password": "x".repeat(100 * 1024) }).to_string(), 413),
        ("deeply nested", format!("{}{}", "[".repeat(200), "]".repeat(200)), 422),
    ]
}

#[rocket::async_test]
async fn structurally_bad_bodies_are_refused_on_every_route_and_change_nothing() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session).to_owned();
    let before = app.snapshot();
    for (method, path, auth) in JSON_ROUTES {
        for (what, body, status) in structurally_bad_bodies() {
            let reply = app
                .send(
                    method,
                    path,
                    Some(&body),
                    auth.then_some(token.as_str()),
                    None,
                )
                .await;
            assert!(
                reply.status.code < 500,
                "{what} on {path}: {}",
                reply.status
            );
            // "unknown field" may also be reported as a missing required field; both are 422.
            assert_eq!(
                reply.status.code, status,
                "{what} on {path}: {}",
                reply.body
            );
            reply.assert_problem(status);
        }
    }
    let nested = format!(
        r#"{{"preferences": {{"a": {}1{}}}}}"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    app.send(
        "PUT",
        "/api/auth/profile",
        Some(&nested),
        Some(&token),
        None,
    )
    .await
    .assert_problem(400);
    // Missing required fields.
    for (method, path, auth) in JSON_ROUTES
        .iter()
        .filter(|(_, p, _)| *p != "/api/auth/profile")
    {
        let reply = app
            .send(
                method,
                path,
                Some("{}"),
                auth.then_some(token.as_str()),
                None,
            )
            .await;
        reply.assert_problem(422);
    }
    assert_eq!(
        app.snapshot(),
        before,
        "a refused request changed the database"
    );
}

#[rocket::async_test]
async fn hostile_strings_are_refused_with_field_errors_and_stored_nowhere() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session).to_owned();
    let before = app.snapshot();
    let long = "a".repeat(10_000);
    let sql = "'; DROP TABLE users; --";
    let register_cases = [
        json!({ "email": format!("{long}@example.com"), "password": PASSWORD }),
        json!({ "email": "ada@example.com", "password": long }),
        json!({ "email": format!("{sql}@example.com"), "password": PASSWORD }),
        json!({ "email": "bob@example.com' OR '1'='1", "password": PASSWORD }),
        json!({ "email": "zoë@exämple.com", "password": PASSWORD }),
        json!({ "email": "bob\u{202e}@example.com", "password": PASSWORD }),
        json!({ "email": "bob@example.com", "password": PASSWORD, "display_name": "x\u{0000}y" }),
        json!({ "email": "bob@example.com", "password": PASSWORD, "display_name": long }),
        json!({ "email": "", "password": "" }),
    ];
    for body in register_cases {
        let reply = app.post("/api/auth/register", body.clone(), None).await;
        reply.assert_problem(reply.status.code);
        assert!(
            matches!(reply.status.code, 409 | 422),
            "{body}: {}",
            reply.body
        );
    }
    let profile_cases = [
        json!({ "avatar_url": "javascript:alert(document.cookie)" }),
        json!({ "avatar_url": "data:text/html,<script>alert(1)</script>" }),
        json!({ "avatar_url": format!("https://example.com/{long}") }),
        json!({ "display_name": sql.repeat(10) }),
        json!({ "bio": long }),
        json!({ "preferences": 3 }),
        json!({ "preferences": { "x": long.repeat(2) } }),
    ];
    for body in profile_cases {
        let reply = app
            .put("/api/auth/profile", body.clone(), Some(&token))
            .await;
        reply.assert_problem(422);
        assert!(reply.body["errors"].is_object(), "{body}: {}", reply.body);
    }
    for body in [json!({ "token": sql }), json!({ "token": long })] {
        app.post("/api/auth/verify-email", body.clone(), None)
            .await
            .assert_problem(422);
        let mut reset = body.clone();
        reset["new_password"] = json!("a brand new secret");
        app.post("/api/auth/reset-password", reset, None)
            .await
            .assert_problem(422);
        app.post(
            "/api/auth/refresh",
            json!({ "refresh_token": body["token"] }),
            None,
        )
        .await
        .assert_problem(401);
    }
    app.post(
        "/api/auth/request-password-reset",
        json!({ "email": sql }),
        None,
    )
    .await
    .assert_problem(422);
    app.send(
        "DELETE",
        &format!("/api/auth/sessions/{}", "9".repeat(5000)),
        None,
        Some(&token),
        None,
    )
    .await
    .assert_problem(404);
    app.send(
        "DELETE",
        "/api/auth/sessions/%27%20OR%201%3D1%20--",
        None,
        Some(&token),
        None,
    )
    .await
    .assert_problem(404);
    assert_eq!(
        app.snapshot(),
        before,
        "a refused request changed the database"
    );

    // Logins with hostile input fail like any wrong login (an audit row records each attempt).
    for (email, password) in [
        (sql, PASSWORD),
        ("ada@example.com", long.as_str()),
        ("ada@example.com", sql),
    ] {
        app.login(email, password).await.assert_problem(401);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users"), 1);
    app.assert_logs_in("ada@example.com", PASSWORD).await;
}

#[rocket::async_test]
async fn bad_tokens_and_methods_on_authenticated_routes_are_problems() {
    let app = spawn_app().await;
    for (method, path) in [
        ("GET", "/api/auth/profile"),
        ("PUT", "/api/auth/profile"),
        ("GET", "/api/auth/sessions"),
        ("DELETE", "/api/auth/sessions/x"),
        ("POST", "/api/auth/logout"),
        ("POST", "/api/auth/logout-all"),
        ("POST", "/api/auth/change-password"),
        ("POST", "/api/auth/resend-verification"),
        ("GET", "/api/admin/users"),
    ] {
        let body = (method == "PUT" || path.ends_with("password")).then_some("{}");
        app.send(method, path, body, Some("Bearer-ish nonsense"), None)
            .await
            .assert_problem(401);
    }
    // No route for this method: a 405 problem naming the methods there are, not an HTML page.
    let wrong = app
        .send("DELETE", "/api/auth/login", None, None, None)
        .await;
    wrong.assert_problem(405);
    assert_eq!(wrong.header("allow"), Some("POST, OPTIONS"));
    app.send("GET", "/api/auth/register", None, None, None)
        .await
        .assert_problem(405);
}
