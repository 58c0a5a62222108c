//! The security headers every response carries, and the policies behind them.

use rocket::Response;
use rocket::http::Header;

use crate::platform::config::Settings;

/// Everything but the API docs: nothing loads from elsewhere, nothing frames us.
const DEFAULT_CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The vendored Swagger UI at `/api/docs/`: its page has no inline script, so scripts come
/// from this origin only (`swagger-ui-bundle.js`, `swagger-ui-standalone-preset.js`,
/// `swagger-initializer.js`; neither needs `eval`). Styles allow `'unsafe-inline'` because
/// the UI renders descriptions as HTML with `style` attributes; its stylesheet draws icons
/// from `data:` URLs; it fetches `/api/openapi.json` and sends "Try it out" calls to this
/// origin. The online validator badge (an image from validator.swagger.io) is turned off
/// in the UI's configuration rather than allowed here.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The headers that depend on the settings, decided once at start.
pub struct SecurityHeaders {
    /// `Strict-Transport-Security`, when the public address is https and it is not turned off.
    hsts: Option<String>,
}

impl SecurityHeaders {
    pub fn from_settings(settings: &Settings) -> SecurityHeaders {
        let https = settings
            .server
            .public_base_url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        let max_age = settings.server.hsts_max_age_secs;
        SecurityHeaders {
            hsts: (https && max_age > 0).then(|| format!("max-age={max_age}")),
        }
    }

    /// Sets the headers on a response to a request for `path`; a response that brings its
    /// own policy (the admin UI) keeps it.
    pub fn apply(&self, path: &str, res: &mut Response<'_>) {
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        res.set_header(Header::new("Referrer-Policy", "no-referrer"));
        if res.headers().get_one("Content-Security-Policy").is_none() {
            let policy = if path.starts_with("/api/docs") {
                DOCS_CSP
            } else {
                DEFAULT_CSP
            };
            res.set_header(Header::new("Content-Security-Policy", policy));
        }
        if let Some(hsts) = &self.hsts {
            res.set_header(Header::new("Strict-Transport-Security", hsts.clone()));
        }
        if path.starts_with("/api") || path.starts_with("/admin/api") || path == "/health" {
            res.set_header(Header::new("Cache-Control", "no-store"));
        }
    }
}
