//! The API's edge as a browser and a generated client see it: CORS from an allowlist,
//! 405 with `Allow`, `OPTIONS` and `HEAD` answered, repeated query parameters refused.

use rocket::figment::providers::Serialized;
use rocket::http::{Header, Method, Status};
use serde_json::json;

use crate::helpers::*;

const APP_ORIGIN: &str = "https://app.example.com";

async fn spawn_with_cors() -> TestApp {
    spawn_app_with(|f| f.merge(Serialized::global("cors_allowed_origins", [APP_ORIGIN]))).await
}

/// `method path` with `headers`, no body.
async fn call(app: &TestApp, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = app.client.req(method, path.to_owned());
    for (name, value) in headers {
        request = request.header(Header::new(name.to_string(), value.to_string()));
    }
    Reply::from(request.dispatch().await).await
}

/// A browser's preflight for `method` from `origin`.
async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> Reply {
    let headers = [
        ("Origin", origin),
        ("Access-Control-Request-Method", method),
        (
            "Access-Control-Request-Headers",
            "authorization, content-type",
        ),
    ];
    call(app, Method::Options, path, &headers).await
}

fn cors_headers(reply: &Reply) -> Vec<&(String, String)> {
    reply
        .headers
        .iter()
        .filter(|(name, _)| name.starts_with("access-control-"))
        .collect()
}

fn varies_on_origin(reply: &Reply) -> bool {
    reply
        .headers
        .iter()
        .any(|(name, value)| name == "vary" && value.to_ascii_lowercase().contains("origin"))
}

#[rocket::async_test]
async fn an_allowed_origin_gets_its_preflight_answered() {
    let app = spawn_with_cors().await;
    for (path, method, allowed) in [
        ("/api/auth/login", "POST", "POST, OPTIONS"),
        ("/api/tokens/holds/7/capture", "POST", "POST, OPTIONS"),
        ("/api/auth/profile", "PUT", "GET, HEAD, PUT, OPTIONS"),
        ("/health", "GET", "GET, HEAD, OPTIONS"),
    ] {
        let reply = preflight(&app, path, APP_ORIGIN, method).await;
        assert_eq!(reply.status, Status::NoContent, "{path}: {}", reply.body);
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(APP_ORIGIN)
        );
        assert_eq!(
            reply.header("access-control-allow-methods"),
            Some(allowed),
            "{path}"
        );
        let headers = reply.header("access-control-allow-headers").unwrap();
        for needed in ["Authorization", "Content-Type", "Idempotency-Key"] {
            assert!(headers.contains(needed), "{path}: {headers}");
        }
        assert_eq!(reply.header("access-control-max-age"), Some("600"));
        assert_eq!(reply.header("access-control-allow-credentials"), None);
        assert!(varies_on_origin(&reply), "{path}");
    }
}

#[rocket::async_test]
async fn an_allowed_origin_reads_answers_and_the_headers_clients_need() {
    let app = spawn_with_cors().await;
    let origin = [("Origin", APP_ORIGIN)];
    let ok = call(&app, Method::Get, "/health", &origin).await;
    let refused = call(&app, Method::Get, "/api/auth/profile", &origin).await;
    assert_eq!(
        (ok.status, refused.status),
        (Status::Ok, Status::Unauthorized)
    );
    for reply in [&ok, &refused] {
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(APP_ORIGIN)
        );
        assert_eq!(
            reply.header("access-control-expose-headers"),
            Some("RateLimit, RateLimit-Policy, Retry-After, X-Request-Id, Idempotent-Replayed")
        );
        assert_eq!(reply.header("access-control-allow-credentials"), None);
        assert!(varies_on_origin(reply));
    }
    // A real cross-origin JSON call works end to end.
    let mut request = app
        .client
        .post("/api/auth/register")
        .header(Header::new("Origin", APP_ORIGIN))
        .header(rocket::http::ContentType::JSON)
        .body(json!({ "email": "ada@example.com", "password": PASSWORD }).to_string());
    request = request.header(Header::new("X-Request-Id", "browser-1"));
    let created = Reply::from(request.dispatch().await).await;
    assert_eq!(created.status, Status::Created, "{}", created.body);
    assert_eq!(
        created.header("access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
}

#[rocket::async_test]
async fn an_origin_not_on_the_list_gets_no_cors_headers() {
    let app = spawn_with_cors().await;
    for origin in [
        "https://evil.example.com",
        "https://app.example.com.evil.net",
        "null",
    ] {
        let reply = preflight(&app, "/api/auth/login", origin, "POST").await;
        assert!(
            cors_headers(&reply).is_empty(),
            "{origin}: {:?}",
            reply.headers
        );
        assert!(varies_on_origin(&reply));
        let reply = call(&app, Method::Get, "/health", &[("Origin", origin)]).await;
        assert_eq!(reply.status, Status::Ok);
        assert!(
            cors_headers(&reply).is_empty(),
            "{origin}: {:?}",
            reply.headers
        );
    }
}

#[rocket::async_test]
async fn the_admin_console_never_gets_cors() {
    let app = spawn_with_cors().await;
    let page = call(&app, Method::Get, "/admin", &[("Origin", APP_ORIGIN)]).await;
    assert_eq!(page.status, Status::Ok);
    let asked = preflight(&app, "/admin/", APP_ORIGIN, "GET").await;
    for reply in [&page, &asked] {
        assert!(cors_headers(reply).is_empty(), "{:?}", reply.headers);
        assert!(!varies_on_origin(reply));
    }
}

#[rocket::async_test]
async fn without_an_allowlist_there_is_no_cors_at_all() {
    let app = spawn_app().await;
    let asked = preflight(&app, "/api/auth/login", APP_ORIGIN, "POST").await;
    let read = call(&app, Method::Get, "/health", &[("Origin", APP_ORIGIN)]).await;
    for reply in [&asked, &read] {
        assert!(cors_headers(reply).is_empty(), "{:?}", reply.headers);
        assert!(!varies_on_origin(reply));
    }
}

#[rocket::async_test]
async fn an_allowlist_entry_that_is_not_an_origin_is_refused_at_start() {
    for bad in [
        "https://app.example.com/",
        "app.example.com",
        "https://app.example.com/x",
        "*",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let figment =
            test_figment(dir.path()).merge(Serialized::global("cors_allowed_origins", [bad]));
        let err = audiostudio::build(figment, Default::default())
            .err()
            .unwrap_or_else(|| panic!("{bad} was accepted"));
        assert!(
            format!("{err:#}").contains("cors_allowed_origins"),
            "{err:#}"
        );
    }
}

#[rocket::async_test]
async fn a_known_path_with_a_wrong_method_is_405_with_allow() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (Method::Delete, "/api/auth/login", "POST, OPTIONS"),
        (Method::Post, "/api/tokens/balance", "GET, HEAD, OPTIONS"),
        (Method::Get, "/api/tokens/holds/7/capture", "POST, OPTIONS"),
        (Method::Put, "/api/auth/sessions/some-id", "DELETE, OPTIONS"),
        (
            Method::Patch,
            "/api/auth/profile",
            "GET, HEAD, PUT, OPTIONS",
        ),
        (
            Method::Delete,
            "/api/tokens/holds",
            "GET, HEAD, POST, OPTIONS",
        ),
        (Method::Get, "/api/admin/social/9/approve", "POST, OPTIONS"),
        (Method::Post, "/health", "GET, HEAD, OPTIONS"),
        (Method::Head, "/api/auth/logout", "POST, OPTIONS"),
    ] {
        let request = app
            .client
            .req(method, path)
            .header(rocket::http::ContentType::JSON)
            .body("{}");
        let reply = Reply::from(request.dispatch().await).await;
        if method != Method::Head {
            reply.assert_problem(405);
            assert_eq!(reply.body["type"], "urn:audiostudio:problem:http-405");
        }
        assert_eq!(reply.status, Status::MethodNotAllowed, "{method} {path}");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
}

#[rocket::async_test]
async fn an_unknown_path_stays_404_whatever_the_method() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::Get, "/api/nothing"),
        (Method::Post, "/api/nothing"),
        (Method::Delete, "/api/tokens/holds/7/capture/more"),
        (Method::Options, "/api/nothing"),
        (Method::Get, "/nothing"),
    ] {
        let reply = call(&app, method, path, &[]).await;
        reply.assert_problem(404);
        assert_eq!(reply.header("allow"), None, "{method} {path}");
    }
}

#[rocket::async_test]
async fn options_lists_the_methods_of_a_known_path() {
    let app = spawn_app().await;
    for (path, allow) in [
        ("/api/tokens/holds/7/release", "POST, OPTIONS"),
        ("/api/tokens/holds", "GET, HEAD, POST, OPTIONS"),
        ("/api/auth/sessions/abc", "DELETE, OPTIONS"),
        ("/api/subscriptions/checkout/cs_1", "GET, HEAD, OPTIONS"),
        ("/health", "GET, HEAD, OPTIONS"),
    ] {
        let reply = call(&app, Method::Options, path, &[]).await;
        assert_eq!(reply.status, Status::NoContent, "{path}: {}", reply.body);
        assert_eq!(reply.header("allow"), Some(allow), "{path}");
    }
}

#[rocket::async_test]
async fn every_get_route_answers_head_like_get_without_a_body() {
    let app = spawn_app().await;
    let token = access(&app.register("ada@example.com").await).to_owned();
    let auth = format!("Bearer {token}");
    let paths: Vec<String> = app
        .client
        .rocket()
        .routes()
        .filter(|r| r.method == Method::Get && r.rank >= -12)
        .map(|r| {
            let path = r.uri.path();
            path.split('/')
                .map(|seg| match seg {
                    s if s.ends_with("..>") => "index.html",
                    s if s.starts_with('<') => "1",
                    s => s,
                })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    assert!(paths.len() >= 15, "{paths:?}");
    for path in paths {
        let headers = [("Authorization", auth.as_str())];
        let get = call(&app, Method::Get, &path, &headers).await;
        let head = call(&app, Method::Head, &path, &headers).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert_ne!(head.status, Status::NotFound, "HEAD {path}: {}", get.body);
        assert_eq!(head.content_type, get.content_type, "HEAD {path}");
        assert_eq!(head.body, json!(""), "HEAD {path} has a body");
    }
}

#[rocket::async_test]
async fn a_repeated_query_parameter_is_422_naming_it() {
    let app = spawn_app().await;
    let token = access(&app.register("ada@example.com").await).to_owned();
    let auth = format!("Bearer {token}");
    for (method, path, name) in [
        (
            Method::Get,
            "/api/tokens/transactions?limit=5&limit=6",
            "limit",
        ),
        (
            Method::Get,
            "/api/tokens/transactions?limit=null&limit=null",
            "limit",
        ),
        (
            Method::Get,
            "/api/tokens/transactions?cursor=3&limit=5&li%6Dit=5",
            "limit",
        ),
        (
            Method::Get,
            "/api/tokens/social?status=pending&status=approved",
            "status",
        ),
        (Method::Post, "/api/auth/logout?x=1&x=2", "x"),
    ] {
        let reply = call(&app, method, path, &[("Authorization", auth.as_str())]).await;
        reply.assert_problem(422);
        assert!(
            reply.body["errors"][name].is_array(),
            "{path}: {}",
            reply.body
        );
    }
    // Given once, the same parameters are read as before.
    let once = app
        .get("/api/tokens/transactions?limit=5", Some(&token))
        .await;
    assert_eq!(once.status, Status::Ok, "{}", once.body);
    let head = call(
        &app,
        Method::Head,
        "/api/tokens/transactions?limit=1&limit=2",
        &[("Authorization", auth.as_str())],
    )
    .await;
    assert_eq!(head.status, Status::UnprocessableEntity);
}
