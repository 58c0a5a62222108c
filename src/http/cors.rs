//! CORS for browser apps on other origins, from an allowlist (`cors_allowed_origins`).
//!
//! Only `/api` and `/health` take part; the admin console (`/admin`) is same-origin and
//! never gets CORS headers. The API authenticates with bearer tokens, so credentials are
//! never allowed (no `Access-Control-Allow-Credentials`). An origin not on the list gets
//! no CORS headers at all, and an empty list sends none to anyone (not even `Vary`).
//!
//! Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered by the
//! `OPTIONS` fallback of [`crate::http::methods`] (204 and `Allow` on a known path): this
//! fairing turns that answer into a preflight answer for an allowed origin. `OPTIONS` is
//! none of the methods the JSON body gate of [`crate::http::content_type`] takes, so a
//! preflight never reaches it.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Header, Method, Status};
use rocket::{Request, Response};

use crate::platform::config::Settings;

/// The request headers a cross-origin caller may send.
pub const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key, X-Request-Id";

/// The response headers a cross-origin caller may read (beyond the CORS-safelisted ones).
pub const EXPOSED_HEADERS: &str =
    "RateLimit, RateLimit-Policy, Retry-After, X-Request-Id, Idempotent-Replayed";

/// The CORS fairing: decided once at start from the settings.
pub struct Cors {
    /// Lowercased, as browsers send them.
    origins: Vec<String>,
    max_age_secs: u64,
}

impl Cors {
    pub fn from_settings(settings: &Settings) -> Cors {
        Cors {
            origins: settings
                .server
                .cors_allowed_origins
                .iter()
                .map(|origin| origin.to_ascii_lowercase())
                .collect(),
            max_age_secs: settings.server.cors_max_age_secs,
        }
    }

    /// The request's `Origin` when it is on the list.
    fn allowed_origin<'r>(&self, req: &'r Request<'_>) -> Option<&'r str> {
        req.headers()
            .get_one("Origin")
            .filter(|origin| self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)))
    }
}

/// Whether CORS applies to `path`: the API and the health check, nothing else.
pub fn applies_to(path: &str) -> bool {
    ["/api", "/health"].iter().any(|root| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

#[rocket::async_trait]
impl Fairing for Cors {
    fn info(&self) -> Info {
        Info {
            name: "CORS from cors_allowed_origins",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        if self.origins.is_empty() || !applies_to(req.uri().path().as_str()) {
            return;
        }
        // The answer depends on the Origin, whether it is allowed or not: caches must know.
        res.adjoin_header(Header::new("Vary", "Origin"));
        let Some(origin) = self.allowed_origin(req) else {
            return;
        };
        res.set_header(Header::new(
            "Access-Control-Allow-Origin",
            origin.to_owned(),
        ));
        res.set_header(Header::new(
            "Access-Control-Expose-Headers",
            EXPOSED_HEADERS,
        ));
        let preflight = req.method() == Method::Options
            && req.headers().contains("Access-Control-Request-Method");
        if preflight && res.status() == Status::NoContent {
            // The OPTIONS fallback listed the path's methods in `Allow`.
            let methods = res
                .headers()
                .get_one("Allow")
                .unwrap_or_default()
                .to_owned();
            res.set_header(Header::new("Access-Control-Allow-Methods", methods));
            res.set_header(Header::new("Access-Control-Allow-Headers", ALLOWED_HEADERS));
            res.set_header(Header::new(
                "Access-Control-Max-Age",
                self.max_age_secs.to_string(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_and_health_take_part() {
        for yes in ["/api", "/api/auth/login", "/health", "/health/"] {
            assert!(applies_to(yes), "{yes}");
        }
        for no in ["/admin", "/admin/api", "/apix", "/healthz", "/"] {
            assert!(!applies_to(no), "{no}");
        }
    }
}
