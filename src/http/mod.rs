//! Cross-cutting HTTP concerns: request ids, the request log line, security headers, client info.

pub mod content_type;
pub mod error;
pub mod idempotency;
pub mod json;
pub mod pagination;
pub mod rate_limit;
pub mod validate;

use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Data, Response};

pub use crate::platform::client::ClientInfo;
pub use json::{JsonBody, parse_body};

pub use rate_limit::{RateLimiter, RateLimits};

const REQUEST_ID: &str = "X-Request-Id";

struct RequestId(String);
struct Started(Instant);

/// The user a request acted as, recorded by the auth guard for the request log.
pub(crate) struct LoggedUser(pub Option<String>);

/// The request id: the caller's `X-Request-Id` when it is sane, otherwise a new UUIDv7.
pub fn request_id<'r>(req: &'r Request<'_>) -> &'r str {
    &req.local_cache(|| {
        let given = req.headers().get_one(REQUEST_ID).filter(|id| {
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
        });
        RequestId(given.map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned))
    })
    .0
}

/// Request ids, one log line per request, security headers, `no-store` on API responses.
pub struct HttpBasics;

#[rocket::async_trait]
impl Fairing for HttpBasics {
    fn info(&self) -> Info {
        Info {
            name: "request ids, request log, security headers",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| Started(Instant::now()));
        request_id(req);
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let id = request_id(req);
        res.set_header(Header::new(REQUEST_ID, id.to_owned()));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        res.set_header(Header::new("Referrer-Policy", "no-referrer"));
        let path = req.uri().path();
        if !path.starts_with("/api/docs")
            && res.headers().get_one("Content-Security-Policy").is_none()
        {
            res.set_header(Header::new(
                "Content-Security-Policy",
                "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ));
        }
        if path.starts_with("/api") || path == "/health" {
            res.set_header(Header::new("Cache-Control", "no-store"));
        }
        let started = req.local_cache(|| Started(Instant::now())).0;
        let user = req.local_cache(|| LoggedUser(None));
        tracing::info!(
            target: "audiostudio::http",
            method = %req.method(),
            path = %path,
            status = res.status().code,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            request_id = id,
            user_id = user.0.as_deref().unwrap_or("-"),
            "request"
        );
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientInfo {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(ClientInfo {
            ip: req.client_ip(),
            user_agent: req
                .headers()
                .get_one("User-Agent")
                .map(|ua| ua.chars().take(512).collect()),
        })
    }
}
