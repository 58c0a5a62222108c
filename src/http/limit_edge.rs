//! Applies [`RateLimits`] at the edge: the global per-IP ceiling and the per-IP classes
//! before routing (a fairing), the per-user classes right after the auth guard (a guard),
//! and the `RateLimit`, `RateLimit-Policy` and `Retry-After` headers on the way out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::uri::Origin;
use rocket::http::{Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Responder;
use rocket::{Data, Response};

use crate::http::error::ApiError;
use crate::http::rate_limit::{Class, Decision, RateLimits};
use crate::http::{ClientInfo, LoggedUser};

/// Where a refused request is sent so that no route runs it.
const REFUSED_PATH: &str = "/__rate_limited";
/// Webhook refusals are logged at most once per this many seconds.
const WEBHOOK_LOG_INTERVAL_SECS: u64 = 60;

/// The limit a request counted against (the refusing one, if any).
struct Counted(Option<Decision>);

/// Set when the fairing refused the request before routing.
struct RefusedEarly(bool);

fn client_key(req: &Request<'_>) -> String {
    ClientInfo {
        ip: req.client_ip(),
        user_agent: None,
    }
    .ip_key()
}

/// The global per-IP ceiling and the per-IP classes, checked before routing.
pub struct EdgeLimits {
    limits: Arc<RateLimits>,
    webhook_logged_at: AtomicU64,
    webhook_suppressed: AtomicU64,
}

impl EdgeLimits {
    pub fn new(limits: Arc<RateLimits>) -> EdgeLimits {
        EdgeLimits {
            limits,
            webhook_logged_at: AtomicU64::new(0),
            webhook_suppressed: AtomicU64::new(0),
        }
    }

    fn log_webhook_refusal(&self, ip: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.webhook_logged_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < WEBHOOK_LOG_INTERVAL_SECS
            || self
                .webhook_logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.webhook_suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let suppressed = self.webhook_suppressed.swap(0, Ordering::Relaxed);
        tracing::warn!(
            client_ip = ip,
            suppressed_since_last_line = suppressed,
            "webhook intake rate limit reached; deliveries refused with 429 (Stripe retries them)"
        );
    }

    fn decide(&self, req: &Request<'_>, class: Option<Class>) -> Option<Decision> {
        let key = client_key(req);
        if class != Some(Class::Webhook) {
            let global = self.limits.global_per_ip.check(&key);
            if global.refused {
                return Some(global);
            }
        }
        let class = class.filter(|c| !c.per_user())?;
        let decision = self.limits.limiter(class).check(&key);
        if decision.refused && class == Class::Webhook {
            self.log_webhook_refusal(&key);
        }
        Some(decision)
    }
}

#[rocket::async_trait]
impl Fairing for EdgeLimits {
    fn info(&self) -> Info {
        Info {
            name: "rate limits",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        let class = RateLimits::class_of(req.method().as_str(), req.uri().path().as_str());
        let Some(decision) = self.decide(req, class) else {
            return;
        };
        let refused = decision.refused;
        // The global ceiling's counts are not reported on routes outside every class.
        if refused || class.is_some() {
            req.local_cache(|| Counted(Some(decision)));
        }
        if refused {
            req.local_cache(|| RefusedEarly(true));
            if let Ok(uri) = Origin::parse(REFUSED_PATH) {
                req.set_uri(uri);
            }
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(decision) = &req.local_cache(|| Counted(None)).0 else {
            return;
        };
        if req.local_cache(|| RefusedEarly(false)).0
            && let Ok(refusal) = refusal(decision).respond_to(req)
        {
            *res = refusal;
        }
        set_headers(decision, res);
    }
}

fn refusal(decision: &Decision) -> ApiError {
    let detail = if decision.what.is_empty() {
        "too many requests from this address; try again later".to_owned()
    } else {
        format!("too many {} requests; try again later", decision.what)
    };
    ApiError::TooManyRequests {
        detail,
        throttle: decision.throttle(),
    }
}

fn set_headers(decision: &Decision, res: &mut Response<'_>) {
    // A refusal of the handler's own (an account lockout, a daily cap) tells its own limit.
    if res.headers().contains("RateLimit") {
        return;
    }
    res.set_header(Header::new(
        "RateLimit-Policy",
        format!("{};w={}", decision.limit, decision.window_secs),
    ));
    res.set_header(Header::new(
        "RateLimit",
        format!(
            "limit={}, remaining={}, reset={}",
            decision.limit, decision.remaining, decision.reset_secs
        ),
    ));
    if (decision.refused || res.status() == Status::TooManyRequests)
        && !res.headers().contains("Retry-After")
    {
        res.set_header(Header::new(
            "Retry-After",
            decision.reset_secs.max(1).to_string(),
        ));
    }
}

/// The per-user limit of the route's class, counted for the caller the auth guard before
/// it established. Put it right after the auth guard; a refusal is a 429 problem.
pub struct UserLimit;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for UserLimit {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let Some(limits) = req.rocket().state::<Arc<RateLimits>>() else {
            return Outcome::Success(UserLimit);
        };
        let class = RateLimits::class_of(req.method().as_str(), req.uri().path().as_str());
        let (Some(class), Some(user)) = (
            class.filter(|c| c.per_user()),
            req.local_cache(|| LoggedUser(None)).0.clone(),
        ) else {
            return Outcome::Success(UserLimit);
        };
        let decision = limits.limiter(class).check(&user);
        let refused = decision.refused.then(|| refusal(&decision));
        req.local_cache(|| Counted(Some(decision)));
        match refused {
            Some(error) => Outcome::Error((Status::TooManyRequests, error)),
            None => Outcome::Success(UserLimit),
        }
    }
}
