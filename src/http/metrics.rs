//! `GET /metrics` in Prometheus text format, and the per-request metrics recorded by the
//! request log fairing.
//!
//! Requests are labelled by method, the matched route's template (never the raw path:
//! the label set stays bounded) and status class. With `metrics_token` set the scrape
//! needs `Authorization: Bearer <token>`, compared in constant time.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Route, State, get, routes};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::OpenApi;

use super::error::{ApiError, ApiResult};
use crate::platform::clock::SharedClock;
use crate::platform::config::Settings;
use crate::platform::db::{Db, DbError};
use crate::platform::metrics::{self as names, interned};

/// The route label of a request no route answered.
const UNMATCHED: &str = "unmatched";

/// Routes ranked below Rocket's own ranks are gates in front of every path, not resources.
const LOWEST_RESOURCE_RANK: isize = -12;

/// Counts a request and records its duration; called once per response.
pub(super) fn observe(req: &Request<'_>, status: Status, took: Duration) {
    let labels = [
        ("method", req.method().as_str()),
        ("route", route_label(req, status)),
        ("status", status_class(status.code)),
    ];
    counter!(names::HTTP_REQUESTS, &labels).increment(1);
    histogram!(names::HTTP_DURATION, &labels).record(took.as_secs_f64());
}

/// The matched route's template (`/api/tokens/holds/<id>/capture`), or `unmatched`.
fn route_label(req: &Request<'_>, status: Status) -> &'static str {
    match req.route() {
        // A gate that let the request through, then nothing matched: Rocket still names it.
        Some(route) if route.rank < LOWEST_RESOURCE_RANK && matches!(status.code, 404 | 405) => {
            UNMATCHED
        }
        Some(route) => interned(route.uri.path()),
        None => UNMATCHED,
    }
}

fn status_class(code: u16) -> &'static str {
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// Who may scrape: anyone, or the holders of `metrics_token` (kept as its SHA-256, so
/// comparing takes the same time whatever the length of what was sent).
pub struct MetricsAccess {
    token_digest: Option<[u8; 32]>,
}

impl MetricsAccess {
    pub fn from_settings(settings: &Settings) -> MetricsAccess {
        MetricsAccess {
            token_digest: settings
                .server
                .metrics_token
                .as_ref()
                .map(|t| Sha256::digest(t.expose_secret().as_bytes()).into()),
        }
    }

    fn allows(&self, presented: Option<&str>) -> bool {
        let Some(expected) = &self.token_digest else {
            return true;
        };
        let Some(token) = presented else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        digest.ct_eq(expected).into()
    }
}

/// The bearer token of the request, if it sent one.
pub struct Bearer(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Bearer {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let token = req
            .headers()
            .get_one("Authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
        Outcome::Success(Bearer(token))
    }
}

/// Mounts `/metrics`.
pub fn routes() -> Vec<Route> {
    routes![scrape]
}

/// The metrics path of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(scrape))]
pub struct ApiDoc;

/// Prometheus metrics (text exposition format 0.0.4). Open unless `metrics_token` is
/// set; then it needs `Authorization: Bearer <metrics_token>`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Every metric, in Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "`metrics_token` is set and was not presented", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database cannot be read", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
#[get("/metrics")]
pub async fn scrape(
    access: &State<MetricsAccess>,
    bearer: Bearer,
    db: &State<Db>,
    clock: &State<SharedClock>,
) -> ApiResult<(ContentType, String)> {
    if !access.allows(bearer.0.as_deref()) {
        return Err(ApiError::Unauthorized("a valid metrics token is required"));
    }
    let registry = names::install();
    gauge!(names::DB_WRITE_QUEUE).set(db.write_queue_depth() as f64);
    let now = clock.now_ms();
    // The queue counts are read, and /proc is read, on a database read thread.
    let text = db
        .read(move |conn| {
            names::observe_queues(conn, now)?;
            Ok::<_, DbError>(registry.render())
        })
        .await?;
    let prometheus =
        ContentType::new("text", "plain").with_params([("version", "0.0.4"), ("charset", "utf-8")]);
    Ok((prometheus, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_needed_only_when_configured_and_must_match() {
        let open = MetricsAccess { token_digest: None };
        assert!(open.allows(None));
        let mut settings = Settings::default();
        settings.server.metrics_token = Some("a-long-metrics-token".into());
        let closed = MetricsAccess::from_settings(&settings);
        assert!(!closed.allows(None));
        assert!(!closed.allows(Some("a-long-metrics-toke")));
        assert!(closed.allows(Some("a-long-metrics-token")));
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}
