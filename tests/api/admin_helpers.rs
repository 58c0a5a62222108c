//! What the admin tests share: the console's sign-in and requests made with its cookie.

use rocket::http::{ContentType, Header};
use serde_json::{Value, json};

use crate::helpers::*;

/// The origin of `public_base_url` in the test settings.
pub const ORIGIN: &str = "https://studio.example.com";

/// A request under `/admin/api` with the console cookie (if any) and `headers`; a body is
/// sent as JSON unless a `Content-Type` is among `headers`.
pub async fn console_send(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&str>,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = match method {
        "POST" => app.client.post(path.to_owned()),
        _ => app.client.get(path.to_owned()),
    };
    let typed = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if let Some(body) = body {
        if !typed {
            request = request.header(ContentType::JSON);
        }
        request = request.body(body);
    }
    if let Some(cookie) = cookie {
        request = request.header(Header::new("Cookie", format!("audiostudio_admin={cookie}")));
    }
    for (name, value) in headers {
        request = request.header(Header::new(name.to_string(), value.to_string()));
    }
    Reply::from(request.dispatch().await).await
}

/// A console GET.
pub async fn cget(app: &TestApp, path: &str, cookie: &str) -> Reply {
    console_send(app, "GET", path, None, Some(cookie), &[]).await
}

/// A console POST as the console makes it: JSON, same origin.
pub async fn cpost(app: &TestApp, path: &str, body: Value, cookie: &str) -> Reply {
    let body = body.to_string();
    console_send(
        app,
        "POST",
        path,
        Some(&body),
        Some(cookie),
        &[("Origin", ORIGIN)],
    )
    .await
}

/// A console POST with an `Idempotency-Key`.
pub async fn cpost_key(app: &TestApp, path: &str, body: Value, cookie: &str, key: &str) -> Reply {
    let body = body.to_string();
    let headers = [("Origin", ORIGIN), ("Idempotency-Key", key)];
    console_send(app, "POST", path, Some(&body), Some(cookie), &headers).await
}

/// `POST /admin/api/login` from the console's own origin.
pub async fn console_login(app: &TestApp, email: &str, password: &str) -> Reply {
    let body = json!({ "email": email, "password": password }).to_string();
    console_send(
        app,
        "POST",
        "/admin/api/login",
        Some(&body),
        None,
        &[("Origin", ORIGIN)],
    )
    .await
}

/// The cookie value a sign-in set.
pub fn cookie_of(reply: &Reply) -> String {
    let set = reply.header("set-cookie").expect("a Set-Cookie header");
    let (pair, _) = set.split_once(';').unwrap();
    pair.strip_prefix("audiostudio_admin=").unwrap().to_owned()
}

/// Grants `amount` tokens to `user_id` from the console, as a test's starting balance.
pub async fn console_grant(app: &TestApp, cookie: &str, user_id: &str, amount: i64) -> Reply {
    cpost_key(
        app,
        &format!("/admin/api/users/{user_id}/tokens/grant"),
        json!({ "amount": amount, "reason": "starting balance" }),
        cookie,
        "g",
    )
    .await
}

/// An admin signed in to the console: (cookie, bearer token, user id).
pub async fn console_admin(app: &TestApp) -> (String, String, String) {
    let (token, id) = admin(app).await;
    let reply = console_login(app, "root@example.com", PASSWORD).await;
    assert_eq!(reply.status.code, 200, "{}", reply.body);
    (cookie_of(&reply), token, id)
}

/// The newest audit row: (action, actor, target id, ip, user agent, details).
pub fn last_audit(app: &TestApp) -> (String, Option<String>, Option<String>, Value) {
    app.db()
        .query_row(
            "SELECT action, actor_user_id, target_id, details FROM audit_logs ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                let details: String = r.get(3)?;
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, serde_json::from_str(&details).unwrap()))
            },
        )
        .unwrap()
}

/// The newest audit row: (action, actor, target, ip, user agent).
pub fn last_audit_row(app: &TestApp) -> (String, String, String, String, String) {
    app.db()
        .query_row(
            "SELECT action, actor_user_id, target_id, ip, user_agent FROM audit_logs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap()
}
