//! Brute-force defences: per-account lockout and per-IP limits, with the headers clients need.

use rocket::figment::providers::Serialized;
use rocket::http::Status;
use serde_json::json;

use crate::helpers::*;

fn assert_rate_limited(reply: &Reply) {
    reply.assert_problem(429);
    let retry: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert!(reply.header("ratelimit-policy").is_some());
    assert!(reply.header("ratelimit").unwrap().contains("remaining=0"));
}

#[rocket::async_test]
async fn an_account_locks_after_repeated_failures_whatever_the_ip_then_releases() {
    let app = spawn_app_with(|f| {
        f.merge(Serialized::global("login_max_failures", 3))
            .merge(Serialized::global("login_lockout_secs", 600))
    })
    .await;
    app.register("ada@example.com").await;
    let body =
        |password: &str| json!({ "email": "ada@example.com", "password": password }).to_string();
    for i in 0..3 {
        let ip = format!("10.0.0.{i}");
        app.send(
            "POST",
            "/api/auth/login",
            Some(&body("wrong password!")),
            None,
            Some(&ip),
        )
        .await
        .assert_problem(401);
    }
    // Even the right password, from a fresh address, is turned away while locked.
    let locked = app
        .send(
            "POST",
            "/api/auth/login",
            Some(&body(PASSWORD)),
            None,
            Some("192.0.2.7"),
        )
        .await;
    assert_rate_limited(&locked);
    let retry: i64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 590 && retry <= 600, "{retry}");
    // Other accounts are unaffected.
    app.register("bob@example.com").await;
    app.assert_logs_in("bob@example.com", PASSWORD).await;

    app.clock.advance_secs(601);
    let ok = app
        .send(
            "POST",
            "/api/auth/login",
            Some(&body(PASSWORD)),
            None,
            Some("192.0.2.7"),
        )
        .await;
    assert_eq!(ok.status, Status::Ok, "{}", ok.body);
    let locked_flags: Vec<bool> = app.column("SELECT json_extract(details, '$.locked') FROM audit_logs WHERE action = 'auth.login_failed' ORDER BY id");
    assert_eq!(locked_flags, [false, false, true]);
}

#[rocket::async_test]
async fn failures_outside_the_window_do_not_add_up() {
    let app = spawn_app_with(|f| {
        f.merge(Serialized::global("login_max_failures", 2))
            .merge(Serialized::global("login_failure_window_secs", 60))
    })
    .await;
    app.register("ada@example.com").await;
    app.login("ada@example.com", "wrong password!")
        .await
        .assert_problem(401);
    app.clock.advance_secs(61);
    app.login("ada@example.com", "wrong password!")
        .await
        .assert_problem(401);
    app.assert_logs_in("ada@example.com", PASSWORD).await;
}

#[rocket::async_test]
async fn login_register_and_reset_are_limited_per_ip() {
    let app = spawn_app_with(|f| {
        f.merge(Serialized::global("rate_limit_login_per_minute", 3))
            .merge(Serialized::global("rate_limit_register_per_hour", 2))
            .merge(Serialized::global("rate_limit_password_reset_per_hour", 2))
    })
    .await;
    let login = json!({ "email": "ada@example.com", "password": "whatever it is" }).to_string();
    for _ in 0..3 {
        app.send(
            "POST",
            "/api/auth/login",
            Some(&login),
            None,
            Some("198.51.100.1"),
        )
        .await
        .assert_problem(401);
    }
    let limited = app
        .send(
            "POST",
            "/api/auth/login",
            Some(&login),
            None,
            Some("198.51.100.1"),
        )
        .await;
    assert_rate_limited(&limited);
    assert_eq!(limited.header("ratelimit-policy"), Some("3;w=60"));
    app.send(
        "POST",
        "/api/auth/login",
        Some(&login),
        None,
        Some("198.51.100.2"),
    )
    .await
    .assert_problem(401);

    for i in 0..2 {
        let body =
            json!({ "email": format!("u{i}@example.com"), "password": PASSWORD }).to_string();
        let reply = app
            .send(
                "POST",
                "/api/auth/register",
                Some(&body),
                None,
                Some("198.51.100.1"),
            )
            .await;
        assert_eq!(reply.status, Status::Created);
    }
    let body = json!({ "email": "u9@example.com", "password": PASSWORD }).to_string();
    assert_rate_limited(
        &app.send(
            "POST",
            "/api/auth/register",
            Some(&body),
            None,
            Some("198.51.100.1"),
        )
        .await,
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM users"), 2);

    let reset = json!({ "email": "u0@example.com" }).to_string();
    for _ in 0..2 {
        let reply = app
            .send(
                "POST",
                "/api/auth/request-password-reset",
                Some(&reset),
                None,
                Some("198.51.100.1"),
            )
            .await;
        assert_eq!(reply.status, Status::Accepted);
    }
    assert_rate_limited(
        &app.send(
            "POST",
            "/api/auth/request-password-reset",
            Some(&reset),
            None,
            Some("198.51.100.1"),
        )
        .await,
    );
}

#[rocket::async_test]
async fn the_ip_comes_from_the_peer_not_from_a_spoofable_header() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("rate_limit_login_per_minute", 1))).await;
    let login = json!({ "email": "ada@example.com", "password": "whatever it is" }).to_string();
    let spoofed = |n: u8| {
        app.client
            .post("/api/auth/login")
            .remote("203.0.113.5:5000".parse().unwrap())
            .header(rocket::http::ContentType::JSON)
            .header(rocket::http::Header::new(
                "X-Real-IP",
                format!("10.9.9.{n}"),
            ))
            .body(login.clone())
    };
    assert_eq!(spoofed(1).dispatch().await.status(), Status::Unauthorized);
    assert_eq!(
        spoofed(2).dispatch().await.status(),
        Status::TooManyRequests
    );
}

#[rocket::async_test]
async fn an_ipv6_client_is_limited_by_its_64_prefix() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("rate_limit_login_per_minute", 1))).await;
    let login = json!({ "email": "ada@example.com", "password": "whatever it is" }).to_string();
    app.send(
        "POST",
        "/api/auth/login",
        Some(&login),
        None,
        Some("2001:db8:1:2::1"),
    )
    .await
    .assert_problem(401);
    let same_prefix = app
        .send(
            "POST",
            "/api/auth/login",
            Some(&login),
            None,
            Some("2001:db8:1:2:ffff::9"),
        )
        .await;
    assert_rate_limited(&same_prefix);
    app.send(
        "POST",
        "/api/auth/login",
        Some(&login),
        None,
        Some("2001:db8:1:3::1"),
    )
    .await
    .assert_problem(401);
}
