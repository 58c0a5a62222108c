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

#[rocket::async_test]
async fn an_https_deployment_sends_hsts_unless_turned_off() {
    // The test settings use https://studio.example.com.
    let app = spawn_app().await;
    for path in ["/health", "/api/auth/profile", "/nowhere", "/api/docs/"] {
        let reply = app.get(path, None).await;
        assert_eq!(
            reply.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    let off = spawn_app_with(|f| f.merge(Serialized::global("hsts_max_age_secs", 0))).await;
    let plain = spawn_app_with(|f| {
        f.merge(Serialized::global(
            "public_base_url",
            "http://localhost:8000",
        ))
    })
    .await;
    for app in [&off, &plain] {
        let reply = app.get("/health", None).await;
        assert_eq!(reply.header("strict-transport-security"), None);
    }
}

#[rocket::async_test]
async fn no_response_names_the_server_software() {
    let app = spawn_app().await;
    for path in ["/health", "/nowhere", "/api/docs/", "/admin"] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.header("server"), None, "{path}");
    }
}

/// The `src`/`href` of every `<script>` and `<link>` of an HTML page, and the inline
/// scripts and styles it carries (which a CSP without hashes would block).
fn page_resources(html: &str) -> (Vec<String>, Vec<String>) {
    let reference =
        regex::Regex::new(r#"<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)""#).unwrap();
    let inline_script = regex::Regex::new(r"(?s)<script\b([^>]*)>(.*?)</script>").unwrap();
    let resources = reference
        .captures_iter(html)
        .map(|c| c[1].to_owned())
        .collect();
    let mut inline: Vec<String> = inline_script
        .captures_iter(html)
        .filter(|c| !c[1].contains("src=") || !c[2].trim().is_empty())
        .map(|c| c[0].to_owned())
        .collect();
    let handler_or_style =
        regex::Regex::new(r"(?i)<style|\sstyle=|\son[a-z]+=|javascript:").unwrap();
    inline.extend(
        handler_or_style
            .find_iter(html)
            .map(|m| m.as_str().to_owned()),
    );
    (resources, inline)
}

/// The sources a policy's directive allows (`script-src 'self'` → `["'self'"]`).
fn directive(csp: &str, name: &str) -> Vec<String> {
    csp.split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(name).filter(|rest| rest.starts_with(' ')))
        .map(|rest| rest.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Every `url(...)` of a stylesheet is a `data:` image the policy allows, or same-origin.
fn assert_css_loads_allowed(path: &str, css: &str, csp: &str) {
    let urls = regex::Regex::new(r#"url\(\s*["']?([^"')]+)"#).unwrap();
    for url in urls.captures_iter(css) {
        let allowed = if url[1].starts_with("data:") {
            directive(csp, "img-src").contains(&"data:".to_owned())
        } else {
            !url[1].contains("//")
        };
        assert!(allowed, "{path} loads {}", &url[1]);
    }
}

#[rocket::async_test]
async fn the_api_docs_load_under_their_content_security_policy() {
    let app = spawn_app().await;
    let page = app.get("/api/docs/", None).await;
    assert_eq!(page.status, Status::Ok);
    let csp = page
        .header("content-security-policy")
        .expect("a CSP on the docs")
        .to_owned();
    assert_eq!(directive(&csp, "default-src"), ["'none'"]);
    assert_eq!(
        directive(&csp, "script-src"),
        ["'self'"],
        "no inline or eval'd script"
    );
    assert_eq!(directive(&csp, "frame-ancestors"), ["'none'"]);
    assert!(directive(&csp, "connect-src").contains(&"'self'".to_owned()));

    let (resources, inline) = page_resources(page.body.as_str().expect("an HTML page"));
    assert!(
        inline.is_empty(),
        "inline code the CSP would block: {inline:?}"
    );
    assert!(resources.len() >= 5, "{resources:?}");
    for resource in &resources {
        // Relative references only: everything comes from this origin ('self').
        assert!(!resource.contains("//"), "{resource} is not same-origin");
        let path = format!("/api/docs/{}", resource.trim_start_matches("./"));
        let reply = app.get(&path, None).await;
        assert_eq!(reply.status, Status::Ok, "{path}");
        assert_eq!(
            reply.header("content-security-policy"),
            Some(csp.as_str()),
            "{path}"
        );
        if path.ends_with(".css") {
            assert_css_loads_allowed(&path, reply.body.as_str().unwrap(), &csp);
        }
    }
    // The initializer fetches the document from this origin and never the online validator.
    let init = app.get("/api/docs/swagger-initializer.js", None).await;
    let init = init.body.as_str().unwrap();
    assert!(init.contains(r#""url": "/api/openapi.json""#), "{init}");
    assert!(init.contains(r#""validatorUrl": "none""#), "{init}");
    assert_eq!(app.get("/api/openapi.json", None).await.status, Status::Ok);
}

#[rocket::async_test]
async fn health_tells_strangers_nothing_about_the_release() {
    let app = spawn_app().await;
    let (user_token, _) = user(&app, "ada@example.com").await;
    let (admin_token, _) = admin(&app).await;
    for token in [None, Some(user_token.as_str()), Some("not-a-token")] {
        let reply = app.get("/health", token).await;
        assert_eq!(reply.status, Status::Ok);
        assert_eq!(reply.body["status"], "ok");
        assert!(reply.body.get("version").is_none(), "{}", reply.body);
        assert!(reply.body.get("email").is_none(), "{}", reply.body);
    }
    let reply = app.get("/health", Some(&admin_token)).await;
    assert_eq!(reply.body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(reply.body["email"], "log (development)");

    let open = spawn_app_with(|f| f.merge(Serialized::global("health_details_public", true))).await;
    let reply = open.get("/health", None).await;
    assert_eq!(reply.body["version"], env!("CARGO_PKG_VERSION"));
}

#[rocket::async_test]
async fn a_client_request_id_is_echoed_but_never_replaces_ours() {
    let app = spawn_app().await;
    let request = app
        .client
        .get("/api/auth/profile")
        .header(Header::new("X-Request-Id", "trace-abc-123"));
    let reply = Reply::from(request.dispatch().await).await;
    reply.assert_problem(401);
    assert_eq!(reply.header("x-request-id"), Some("trace-abc-123"));
    let ours = reply.body["request_id"].as_str().unwrap();
    assert_ne!(ours, "trace-abc-123");
    assert!(uuid::Uuid::parse_str(ours).is_ok(), "{ours}");
}

/// The console page runs under its own strict CSP (`default-src 'none'`, scripts and
/// styles from this origin, no inline code), so its look comes from a stylesheet of its
/// own, which must load.
#[rocket::async_test]
async fn the_admin_page_has_no_inline_code_and_its_stylesheet_loads() {
    let app = spawn_app().await;
    let page = app.get("/admin", None).await;
    assert_eq!(page.status, Status::Ok);
    let csp = page
        .header("content-security-policy")
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.body.as_str().unwrap_or_default().to_owned();
    for inline in ["<style", "<script>", " style=", "onclick="] {
        assert!(
            !html.contains(inline),
            "inline code in the console page: {inline}"
        );
    }
    assert!(
        html.contains(r#"<link rel="stylesheet" href="/admin/admin.css">"#),
        "{html}"
    );
    let css = app.get("/admin/admin.css", None).await;
    assert_eq!(css.status, Status::Ok);
    assert_eq!(css.content_type.as_deref(), Some("text/css; charset=utf-8"));
    assert!(
        css.body
            .as_str()
            .unwrap_or_default()
            .contains("font-family")
    );
}
