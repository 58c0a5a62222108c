//! Every admin route, under both bases: 401 without credentials, 403 for a user, 404 for
//! an unknown id, and bad input answered with a 4xx problem that changes nothing.

use rocket::http::{ContentType, Header};
use serde_json::json;

use crate::admin_helpers::*;
use crate::helpers::*;

/// (method, path under the base, a valid body); `{id}` is a user, `{sid}` a session,
/// `{hold}` a hold, `{claim}` a claim, `{event}` a webhook event, `{row}` an audit row.
const ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/overview", None),
    ("GET", "/system", None),
    ("GET", "/users", None),
    ("GET", "/users/{id}", None),
    ("POST", "/users/{id}/disable", Some(r#"{"reason":"r"}"#)),
    ("POST", "/users/{id}/enable", Some("{}")),
    ("POST", "/users/{id}/role", Some(r#"{"role":"user"}"#)),
    ("POST", "/users/{id}/unlock", Some("{}")),
    ("POST", "/users/{id}/verify-email", Some("{}")),
    ("POST", "/users/{id}/mfa-reset", Some("{}")),
    ("POST", "/users/{id}/resend-verification", Some("{}")),
    ("POST", "/users/{id}/password-reset", Some("{}")),
    ("GET", "/users/{id}/sessions", None),
    ("POST", "/users/{id}/sessions/{sid}/revoke", Some("{}")),
    ("POST", "/users/{id}/sessions/revoke-all", Some("{}")),
    ("GET", "/users/{id}/activity", None),
    ("GET", "/users/{id}/tokens", None),
    ("GET", "/users/{id}/ledger", None),
    ("GET", "/users/{id}/lots", None),
    ("GET", "/users/{id}/holds", None),
    (
        "POST",
        "/users/{id}/tokens/grant",
        Some(r#"{"amount":1,"reason":"r"}"#),
    ),
    (
        "POST",
        "/users/{id}/tokens/adjust",
        Some(r#"{"amount":1,"reason":"r"}"#),
    ),
    (
        "POST",
        "/users/{id}/holds/{hold}/release",
        Some(r#"{"reason":"r"}"#),
    ),
    ("GET", "/users/{id}/billing", None),
    ("GET", "/claims", None),
    ("POST", "/claims/{claim}/approve", Some("{}")),
    ("POST", "/claims/{claim}/reject", Some(r#"{"reason":"r"}"#)),
    ("GET", "/webhooks", None),
    ("GET", "/webhooks/{event}", None),
    ("POST", "/webhooks/{event}/replay", Some("{}")),
    ("POST", "/webhooks/replay-failed", Some("{}")),
    ("GET", "/audit", None),
    ("GET", "/audit/{row}", None),
    ("POST", "/audit/verify", Some("{}")),
    ("GET", "/checks/ledger", None),
    ("GET", "/token-shortfalls", None),
    ("GET", "/analytics", None),
];

fn fill(path: &str, id: &str) -> String {
    path.replace("{id}", id)
        .replace("{sid}", "no-session")
        .replace("{hold}", "no-hold")
        .replace("{claim}", "no-claim")
        .replace("{event}", "evt_none")
        .replace("{row}", "999999")
}

async fn bearer(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Reply {
    app.send(method, path, body, token, None).await
}

#[rocket::async_test]
async fn every_route_needs_an_admin_under_both_bases() {
    let app = spawn_app().await;
    console_admin(&app).await;
    let (user_token, ada) = user(&app, "ada@example.com").await;
    // A user is never issued a cookie; a made-up one is refused like none at all.
    let ada_cookie = "made-up-cookie";
    for (method, path, body) in ROUTES {
        let path = fill(path, &ada);
        let api = format!("/api/admin{path}");
        let console = format!("/admin/api{path}");
        bearer(&app, method, &api, *body, None)
            .await
            .assert_problem(401);
        bearer(&app, method, &api, *body, Some(&user_token))
            .await
            .assert_problem(403);
        console_send(&app, method, &console, *body, None, &[("Origin", ORIGIN)])
            .await
            .assert_problem(401);
        console_send(
            &app,
            method,
            &console,
            *body,
            Some(ada_cookie),
            &[("Origin", ORIGIN)],
        )
        .await
        .assert_problem(401);
    }
}

#[rocket::async_test]
async fn the_openapi_document_has_every_admin_route_and_closed_request_bodies() {
    let app = spawn_app().await;
    let doc = app.get("/api/openapi.json", None).await.body;
    for (method, path, _) in ROUTES {
        let path = path
            .replace("{hold}", "{hold_id}")
            .replace("{claim}", "{id}")
            .replace("{event}", "{id}")
            .replace("{row}", "{id}");
        let op = &doc["paths"][format!("/api/admin{path}")][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} undocumented");
    }
    for name in [
        "EmptyRequest",
        "GrantRequest",
        "AdjustRequest",
        "ReleaseRequest",
        "DisableRequest",
        "RejectRequest",
    ] {
        let schema = &doc["components"]["schemas"][name];
        assert_eq!(schema["additionalProperties"], false, "{name}: {schema}");
        assert!(schema["example"].is_object(), "{name} has no example");
    }
    for path in ["/admin/api/login", "/admin/api/logout", "/admin/api/me"] {
        assert!(doc["paths"][path].is_object(), "{path} undocumented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_cookie"]["in"],
        "cookie"
    );
}

#[rocket::async_test]
async fn an_unknown_id_is_404_on_every_route_that_takes_one() {
    let app = spawn_app().await;
    let (cookie, token, _) = console_admin(&app).await;
    let (_, ada) = user(&app, "ada@example.com").await;
    let before = app.snapshot();
    for (method, path, body) in ROUTES {
        if !path.contains('{') {
            continue;
        }
        // The user is unknown, or (with a known user) the session, hold, claim, event or row.
        let ids: &[&str] = if path.contains("{id}") && path.matches('{').count() == 1 {
            &["nobody"]
        } else {
            &["nobody", ada.as_str()]
        };
        for id in ids {
            let path = fill(path, id);
            bearer(
                &app,
                method,
                &format!("/api/admin{path}"),
                *body,
                Some(&token),
            )
            .await
            .assert_problem(404);
            console_send(
                &app,
                method,
                &format!("/admin/api{path}"),
                *body,
                Some(&cookie),
                &[("Origin", ORIGIN)],
            )
            .await
            .assert_problem(404);
        }
    }
    assert_eq!(app.snapshot(), before);
}

fn bad_bodies() -> Vec<(&'static str, String, u16)> {
    vec![
        ("malformed JSON", r#"{"reas"#.to_owned(), 400),
        ("empty body", String::new(), 400),
        ("an array", "[]".to_owned(), 422),
        ("a number", "42".to_owned(), 422),
        (
            "wrong types",
            r#"{"reason": 5, "role": [], "amount": "many"}"#.to_owned(),
            422,
        ),
        (
            "unknown field",
            r#"{"reason": "r", "amount": 1, "role": "user", "surprise": true}"#.to_owned(),
            422,
        ),
        (
            "oversized",
            json!({ "reason": "x".repeat(100 * 1024) }).to_string(),
            413,
        ),
    ]
}

#[rocket::async_test]
async fn bad_bodies_on_every_admin_mutation_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let (cookie, token, _) = console_admin(&app).await;
    let (_, ada) = user(&app, "ada@example.com").await;
    let before = app.snapshot();
    for (method, path, _) in ROUTES.iter().filter(|(m, _, _)| *m == "POST") {
        let path = fill(path, &ada);
        for (what, body, status) in bad_bodies() {
            let reply = bearer(
                &app,
                method,
                &format!("/api/admin{path}"),
                Some(&body),
                Some(&token),
            )
            .await;
            assert_eq!(
                reply.status.code, status,
                "{what} on {path}: {}",
                reply.body
            );
            reply.assert_problem(status);
            let console = format!("/admin/api{path}");
            let reply = console_send(
                &app,
                method,
                &console,
                Some(&body),
                Some(&cookie),
                &[("Origin", ORIGIN)],
            )
            .await;
            assert_eq!(
                reply.status.code, status,
                "{what} on {console}: {}",
                reply.body
            );
        }
        // A form post is never read as JSON: 415 under /api, 403 with the cookie.
        let form = app
            .client
            .post(format!("/api/admin{path}"))
            .header(ContentType::Form)
            .header(Header::new("Authorization", format!("Bearer {token}")))
            .body("reason=r");
        Reply::from(form.dispatch().await).await.assert_problem(415);
    }
    // Bad values (the shapes are right) are 422s with the field named.
    let values = [
        (
            format!("/users/{ada}/disable"),
            json!({ "reason": "" }),
            "reason",
        ),
        (
            format!("/users/{ada}/disable"),
            json!({ "reason": "a\u{0}b" }),
            "reason",
        ),
        (
            format!("/users/{ada}/enable"),
            json!({ "reason": "x".repeat(501) }),
            "reason",
        ),
        (
            format!("/users/{ada}/tokens/grant"),
            json!({ "amount": -5, "reason": "r" }),
            "amount",
        ),
        (
            format!("/users/{ada}/tokens/grant"),
            json!({ "amount": 5, "reason": "r", "expires_at": "soon" }),
            "expires_at",
        ),
        (
            format!("/users/{ada}/tokens/adjust"),
            json!({ "amount": 0, "reason": "r" }),
            "amount",
        ),
        (
            "/claims/x/reject".to_owned(),
            json!({ "reason": " " }),
            "reason",
        ),
    ];
    for (path, body, field) in values {
        let reply = cpost(&app, &format!("/admin/api{path}"), body, &cookie).await;
        reply.assert_problem(422);
        assert!(
            reply.body["errors"][field].is_array(),
            "{path}: {}",
            reply.body
        );
    }
    assert_eq!(app.snapshot(), before);
}
