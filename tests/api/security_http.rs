//! HTTP hygiene an attacker probes first: which bodies are parsed, which headers and
//! banners a response carries, what `/health` tells strangers, what the request log keeps.

use rocket::figment::providers::Serialized;
use rocket::http::{Header, Method, Status};
use serde_json::json;

use crate::helpers::*;

/// `method path` with `body` declared as `content_type` (no header when `None`).
async fn send_typed(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
    token: Option<&str>,
) -> Reply {
    let mut request = app.client.req(method, path.to_owned()).body(body);
    if let Some(content_type) = content_type {
        request = request.header(Header::new("Content-Type", content_type.to_owned()));
    }
    if let Some(token) = token {
        request = request.header(Header::new("Authorization", format!("Bearer {token}")));
    }
    Reply::from(request.dispatch().await).await
}

/// What a cross-site page can send without a preflight: a form post, a `text/plain` post
/// carrying JSON (`enctype="text/plain"`), and a body with no type at all.
const FOREIGN_TYPES: [Option<&str>; 4] = [
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    Some("multipart/form-data; boundary=x"),
    None,
];

fn assert_refused_as_not_json(reply: &Reply) {
    reply.assert_problem(415);
    assert_eq!(
        reply.body["type"], "urn:audiostudio:problem:unsupported-media-type",
        "{}",
        reply.body
    );
    assert!(
        reply.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("application/json")),
        "{}",
        reply.body
    );
}

#[rocket::async_test]
async fn public_json_routes_refuse_bodies_a_foreign_page_can_send() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let before = app.snapshot();
    let credentials = json!({ "email": "eve@example.com", "password": PASSWORD }).to_string();
    let ada = json!({ "email": "ada@example.com", "password": PASSWORD }).to_string();
    for content_type in FOREIGN_TYPES {
        for (path, body) in [
            ("/api/auth/register", credentials.as_str()),
            ("/api/auth/login", ada.as_str()),
            ("/api/auth/request-password-reset", ada.as_str()),
            ("/api/auth/register", "email=eve%40example.com&password=x"),
        ] {
            let reply = send_typed(&app, Method::Post, path, content_type, body, None).await;
            assert_refused_as_not_json(&reply);
        }
    }
    // Nobody registered, logged in, asked for a reset or failed a login.
    assert_eq!(app.snapshot(), before);
}

#[rocket::async_test]
async fn authenticated_and_admin_json_routes_refuse_other_bodies() {
    let app = spawn_app().await;
    let (admin_token, admin_id) = admin(&app).await;
    let grant = json!({ "user_id": admin_id, "amount": 50, "reason": "test" }).to_string();
    let spend = json!({ "amount": 1, "feature": "transcription" }).to_string();
    let profile = json!({ "display_name": "Eve was here" }).to_string();
    let before = app.snapshot();
    for content_type in FOREIGN_TYPES {
        let calls = [
            (Method::Post, "/api/tokens/add", grant.as_str()),
            (Method::Post, "/api/tokens/use", spend.as_str()),
            (Method::Post, "/api/tokens/holds", spend.as_str()),
            (Method::Put, "/api/auth/profile", profile.as_str()),
        ];
        for (method, path, body) in calls {
            let reply =
                send_typed(&app, method, path, content_type, body, Some(&admin_token)).await;
            assert_refused_as_not_json(&reply);
        }
    }
    assert_eq!(app.snapshot(), before);
    // Declared JSON, the same grant goes through.
    let granted = send_typed(
        &app,
        Method::Post,
        "/api/tokens/add",
        Some("application/json"),
        &grant,
        Some(&admin_token),
    )
    .await;
    assert_eq!(granted.status, Status::Created, "{}", granted.body);
}

#[rocket::async_test]
async fn json_with_parameters_or_a_json_suffix_is_read() {
    let app = spawn_app().await;
    let register = |email: &str| json!({ "email": email, "password": PASSWORD }).to_string();
    for (content_type, email) in [
        ("application/json; charset=utf-8", "ada@example.com"),
        ("Application/JSON;charset=UTF-8", "bob@example.com"),
        ("application/vnd.audiostudio+json", "cy@example.com"),
    ] {
        let reply = send_typed(
            &app,
            Method::Post,
            "/api/auth/register",
            Some(content_type),
            &register(email),
            None,
        )
        .await;
        assert_eq!(
            reply.status,
            Status::Created,
            "{content_type}: {}",
            reply.body
        );
    }
}

#[rocket::async_test]
async fn optional_and_empty_bodies_keep_working_and_a_foreign_one_is_refused() {
    let app = spawn_app().await;
    let (admin_token, _) = admin(&app).await;
    // The retry route reads an optional body: empty means `{}`, whatever the type.
    for content_type in [None, Some("application/x-www-form-urlencoded")] {
        let reply = send_typed(
            &app,
            Method::Post,
            "/api/webhooks/retry",
            content_type,
            "",
            Some(&admin_token),
        )
        .await;
        assert_eq!(reply.status, Status::Ok, "{}", reply.body);
        assert_eq!(reply.body["requeued"], 0);
    }
    let reply = send_typed(
        &app,
        Method::Post,
        "/api/webhooks/retry",
        Some("text/plain"),
        "{}",
        Some(&admin_token),
    )
    .await;
    assert_refused_as_not_json(&reply);
    // A body-less call is unaffected; an unknown path is still a 404.
    let logout = send_typed(
        &app,
        Method::Post,
        "/api/auth/logout",
        None,
        "",
        Some(&admin_token),
    )
    .await;
    assert_eq!(logout.status, Status::NoContent, "{}", logout.body);
    send_typed(&app, Method::Post, "/api/nowhere", None, "", None)
        .await
        .assert_problem(404);
}

#[rocket::async_test]
async fn the_stripe_webhook_takes_what_stripe_sends() {
    let secret = "whsec_content_type";
    let app = spawn_app_with(|f| {
        f.merge(Serialized::global("stripe_webhook_secret", secret))
            .merge(Serialized::global("stripe_secret_key", "sk_test_123"))
    })
    .await;
    let body = json!({
        "id": "evt_ct_1", "object": "event", "type": "customer.created", "livemode": false,
        "api_version": "2024-06-20", "created": 1_700_000_000,
        "data": { "object": { "id": "cus_1", "object": "customer" } },
    })
    .to_string();
    let request = app
        .client
        .post("/api/webhooks/stripe")
        .header(Header::new(
            "Content-Type",
            "application/json; charset=utf-8",
        ))
        .header(Header::new(
            "Stripe-Signature",
            signed(secret, app.clock_now() / 1000, &body),
        ))
        .body(body);
    let reply = Reply::from(request.dispatch().await).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_events WHERE id = 'evt_ct_1'"),
        1
    );
}
