//! Only JSON bodies are read. A request to `/api/...` that carries a body under another
//! media type (a form post, `text/plain`, none at all) gets 415 before any route reads it:
//! HTML forms and `text/plain` are "simple" requests a browser sends cross-site without
//! a CORS preflight, so parsing them would let any web page register, log in or request
//! resets as its visitors.
//!
//! Written once for every route: routes mounted in front of all others (rank
//! [`FIRST`]) take each `POST`, `PUT`, `PATCH` and `DELETE` under `/api` and forward the
//! request, body untouched, to the route it was meant for unless it must be refused.
//! `application/json` and `application/*+json` pass, with any parameters
//! (`charset=utf-8`); an empty body passes whatever its type, so body-less calls such as
//! `POST /api/auth/logout` are unaffected. Stripe's webhook intake is left out: its body
//! is checked byte for byte against its signature.

use rocket::data::Data;
use rocket::http::{ContentType, Method, Status};
use rocket::request::Request;
use rocket::route::{self, Handler, Route};

use crate::http::error::ApiError;

/// Tried before every other route (Rocket's own ranks go down to -12).
const FIRST: isize = -100;

/// Bodies that are not ours to judge: Stripe's signed events, verified byte for byte
/// (Stripe sends `application/json; charset=utf-8`).
const RAW_BODY_PATHS: [&str; 1] = ["/api/webhooks/stripe"];

/// The routes that refuse non-JSON bodies; mount them at `/api`.
pub fn routes() -> Vec<Route> {
    [Method::Post, Method::Put, Method::Patch, Method::Delete]
        .into_iter()
        .map(|method| Route::ranked(FIRST, method, "/<_..>", RefuseNotJson))
        .collect()
}

/// Whether `content_type` names JSON: `application/json` or `application/<anything>+json`.
pub fn is_json(content_type: &ContentType) -> bool {
    content_type.top() == "application"
        && (content_type.sub() == "json"
            || content_type
                .sub()
                .as_str()
                .to_ascii_lowercase()
                .ends_with("+json"))
}

/// Answers 415 to a non-empty body that is not declared JSON; forwards anything else,
/// body untouched, to the route it was meant for.
#[derive(Clone)]
struct RefuseNotJson;

#[rocket::async_trait]
impl Handler for RefuseNotJson {
    async fn handle<'r>(&self, req: &'r Request<'_>, mut data: Data<'r>) -> route::Outcome<'r> {
        let declared = req.content_type();
        let exempt = RAW_BODY_PATHS.contains(&req.uri().path().as_str());
        // Peeking keeps the bytes for the route the request is forwarded to.
        if exempt || declared.is_some_and(is_json) || data.peek(1).await.is_empty() {
            return route::Outcome::forward(data, Status::NotFound);
        }
        let got = declared.map_or_else(
            || "no Content-Type".to_owned(),
            |c| format!("Content-Type {}/{}", c.top(), c.sub()),
        );
        route::Outcome::from(
            req,
            ApiError::UnsupportedMediaType(format!(
                "the body must be JSON sent as Content-Type: application/json (this request has {got})"
            )),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_json_suffixed_types_pass_with_parameters() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
            "application/vnd.api+JSON; charset=utf-8",
        ] {
            assert!(is_json(&ok.parse().unwrap()), "{ok}");
        }
        for refused in [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
            "text/json",
            "application/jsonx",
        ] {
            assert!(!is_json(&refused.parse().unwrap()), "{refused}");
        }
    }
}
