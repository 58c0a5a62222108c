//! Which methods a path has, from the router's own table: `405` with `Allow` for a known
//! path asked with a method it lacks (instead of 404), and `OPTIONS` answered on every
//! known path (204 with `Allow`). `HEAD` is answered by Rocket itself through the `GET`
//! route, so every path with `GET` lists `HEAD` too.

use rocket::Response;
use rocket::data::Data;
use rocket::http::{Header, Method, Status};
use rocket::request::Request;
use rocket::route::{self, Handler, Route};

/// Routes ranked below Rocket's own ranks (-12 to -1) are gates in front of every path
/// (the JSON body gate, the query gate), not resources: they say nothing about a path.
const LOWEST_RESOURCE_RANK: isize = -12;

/// The `OPTIONS` fallback: after every other route, and not a resource either.
const FALLBACK: isize = 1000;

/// The order methods are listed in `Allow`.
const ORDER: [Method; 7] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Options,
];

/// The `OPTIONS` fallback; mount it at `/`.
pub fn routes() -> Vec<Route> {
    vec![Route::ranked(
        FALLBACK,
        Method::Options,
        "/<_..>",
        AnswerOptions,
    )]
}

/// Whether a route's path template (`/api/tokens/holds/<id>/capture`) matches the request
/// path's segments, the way Rocket's router matches them. Runs for every route on every
/// 404, so it allocates nothing.
fn template_matches(template: &str, segments: &[&str]) -> bool {
    let mut matched = 0;
    for part in template.split('/').filter(|p| !p.is_empty()) {
        if part.starts_with('<') && part.ends_with("..>") {
            // A trailing `<rest..>` takes whatever is left, nothing included.
            return true;
        }
        let Some(segment) = segments.get(matched) else {
            return false;
        };
        let dynamic = part.starts_with('<') && part.ends_with('>');
        if !dynamic && part != *segment {
            return false;
        }
        matched += 1;
    }
    matched == segments.len()
}

/// How literally a template names a path, segment by segment (a literal beats a
/// parameter, which beats a trailing `<..>`): of the routes matching a path, only the most
/// specific ones are its resource. `POST /api/admin/audit/verify` is one resource and
/// `GET /api/admin/audit/<id>` another, though `<id>` would match `verify` too.
fn specificity(template: &str) -> Vec<u8> {
    let template = template.strip_prefix('/').unwrap_or(template);
    template
        .split('/')
        .filter(|part| !part.is_empty())
        .map(
            |part| match (part.starts_with('<'), part.ends_with("..>")) {
                (false, _) => 2,
                (true, false) => 1,
                (true, true) => 0,
            },
        )
        .collect()
}

/// The methods the routes for this request's path answer, in [`ORDER`] with `HEAD` for
/// `GET` and `OPTIONS` always; empty when no route has the path.
pub fn allowed_methods(req: &Request<'_>) -> Vec<Method> {
    let segments: Vec<&str> = req.uri().path().segments().collect();
    let matching: Vec<&Route> = req
        .rocket()
        .routes()
        .filter(|r| (LOWEST_RESOURCE_RANK..FALLBACK).contains(&r.rank))
        .filter(|r| template_matches(r.uri.path(), &segments))
        .collect();
    let best = matching.iter().map(|r| specificity(r.uri.path())).max();
    let found: Vec<Method> = matching
        .iter()
        .filter(|r| Some(specificity(r.uri.path())) == best)
        .map(|r| r.method)
        .collect();
    if found.is_empty() {
        return found;
    }
    ORDER
        .into_iter()
        .filter(|m| {
            found.contains(m)
                || *m == Method::Options
                || (*m == Method::Head && found.contains(&Method::Get))
        })
        .collect()
}

/// `GET, HEAD, OPTIONS`.
pub fn allow_header(methods: &[Method]) -> Header<'static> {
    let list: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
    Header::new("Allow", list.join(", "))
}

/// For a 404 with no route for the request's method: the methods the path does have, if any.
pub fn not_allowed(req: &Request<'_>) -> Option<Vec<Method>> {
    let methods = allowed_methods(req);
    (!methods.is_empty() && !methods.contains(&req.method())).then_some(methods)
}

/// For a request Rocket could not parse and answered 400 before any route or fairing ran:
/// the methods of its path when it names a known one. Rocket 0.5 knows only the methods of
/// RFC 9110 and PATCH; for any other (`QUERY`, `PROPFIND`, ...) it keeps the path and
/// passes `GET` as the method, so the path is all there is to go on. An unparseable target
/// reaches here as `/`, which is why `/` keeps the 400.
pub fn unknown_method(req: &Request<'_>) -> Option<Vec<Method>> {
    if req.uri().path() == "/" {
        return None;
    }
    let methods = allowed_methods(req);
    (!methods.is_empty()).then_some(methods)
}

/// 204 with `Allow` on a known path; a 404 (the default catcher) elsewhere.
#[derive(Clone)]
struct AnswerOptions;

#[rocket::async_trait]
impl Handler for AnswerOptions {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> route::Outcome<'r> {
        let methods = allowed_methods(req);
        if methods.is_empty() {
            return route::Outcome::forward(data, Status::NotFound);
        }
        let response = Response::build()
            .status(Status::NoContent)
            .header(allow_header(&methods))
            .finalize();
        route::Outcome::Success(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_like_the_router() {
        let m = |t: &str, p: &[&str]| template_matches(t, p);
        assert!(m(
            "/api/tokens/holds/<id>/capture",
            &["api", "tokens", "holds", "7", "capture"]
        ));
        assert!(!m(
            "/api/tokens/holds/<id>/capture",
            &["api", "tokens", "holds", "7"]
        ));
        assert!(!m("/api/tokens/holds", &["api", "tokens", "holdx"]));
        assert!(m("/admin/<path..>", &["admin"]));
        assert!(m("/admin/<path..>", &["admin", "a", "b"]));
        assert!(!m("/admin/<path..>", &["api"]));
        assert!(m("/", &[]));
        assert!(!m("/", &["x"]));
    }

    #[test]
    fn a_literal_segment_is_more_specific_than_a_parameter() {
        let literal = specificity("/api/admin/audit/verify");
        assert!(literal > specificity("/api/admin/audit/<id>"));
        assert!(specificity("/admin/<path..>") < specificity("/admin/api/login"));
        assert!(specificity("/api/admin/audit/<id>") > specificity("/api/<path..>"));
    }
}
