//! Cross-cutting HTTP concerns: request ids, the request log line and request metrics,
//! security headers, client info.

pub mod content_type;
pub mod cors;
pub mod error;
pub mod headers;
pub mod idempotency;
pub mod json;
pub mod limit_edge;
pub mod methods;
pub mod metrics;
pub mod pagination;
pub mod query;
pub mod rate_limit;
pub mod validate;

use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Data, Response};

pub use crate::platform::client::ClientInfo;
use crate::platform::config::Settings;
use headers::SecurityHeaders;
pub use json::{JsonBody, parse_body};

pub use limit_edge::{EdgeLimits, UserLimit};
pub use rate_limit::{RateLimiter, RateLimits};

const REQUEST_ID: &str = "X-Request-Id";

/// Our id for a request, and the caller's own `X-Request-Id` when it sent a sane one.
struct RequestIds {
    ours: String,
    theirs: Option<String>,
}

struct Started(Instant);

/// Set by [`HttpBasics`] on every request Rocket dispatches. A request whose request line
/// Rocket cannot parse (a method it does not know, such as `QUERY`) skips the fairings and
/// reaches the 400 catcher directly, without it.
struct Dispatched(bool);

/// Whether Rocket parsed this request and dispatched it (see [`Dispatched`]).
pub(crate) fn was_dispatched(req: &Request<'_>) -> bool {
    req.local_cache(|| Dispatched(false)).0
}

/// The user a request acted as, recorded by the auth guard for the request log.
pub(crate) struct LoggedUser(pub Option<String>);

fn request_ids<'r>(req: &'r Request<'_>) -> &'r RequestIds {
    req.local_cache(|| RequestIds {
        ours: uuid::Uuid::now_v7().to_string(),
        theirs: req
            .headers()
            .get_one(REQUEST_ID)
            .filter(|id| {
                !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
            })
            .map(str::to_owned),
    })
}

/// Our id for the request (a UUIDv7), in problem bodies and the request log. A caller's
/// `X-Request-Id` never replaces it: it is echoed and logged beside it.
pub fn request_id<'r>(req: &'r Request<'_>) -> &'r str {
    &request_ids(req).ours
}

/// Request ids, one log line per request, security headers, `no-store` on API responses.
pub struct HttpBasics {
    headers: SecurityHeaders,
}

impl HttpBasics {
    pub fn from_settings(settings: &Settings) -> HttpBasics {
        HttpBasics {
            headers: SecurityHeaders::from_settings(settings),
        }
    }
}

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
        req.local_cache(|| Dispatched(true));
        request_ids(req);
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let ids = request_ids(req);
        // The caller's id goes back to it; without one, ours does.
        let echoed = ids.theirs.as_deref().unwrap_or(&ids.ours);
        res.set_header(Header::new(REQUEST_ID, echoed.to_owned()));
        let path = req.uri().path();
        self.headers.apply(path.as_str(), res);
        let started = req.local_cache(|| Started(Instant::now())).0;
        metrics::observe(req, res.status(), started.elapsed());
        let user = req.local_cache(|| LoggedUser(None));
        tracing::info!(
            target: "audiostudio::http",
            method = %req.method(),
            path = %path,
            status = res.status().code,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            request_id = ids.ours.as_str(),
            client_request_id = ids.theirs.as_deref().unwrap_or("-"),
            client_ip = %req.client_ip().map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
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
