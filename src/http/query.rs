//! A query parameter given twice (`?limit=5&limit=6`, `?limit=null&limit=null`) is a 422
//! naming it, on every route under `/api`: Rocket would silently keep the first value.
//!
//! Written once, like the JSON body gate: routes ranked in front of all others (and of
//! that gate) take every request under `/api` and forward it untouched unless a
//! parameter repeats. `HEAD` needs no route of its own: Rocket retries it as `GET`.

use rocket::data::Data;
use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::route::{self, Handler, Route};

use crate::http::error::ApiError;

/// In front of the JSON body gate (-100).
const FIRST: isize = -101;

/// The routes that refuse repeated query parameters; mount them at `/api`.
pub fn routes() -> Vec<Route> {
    [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ]
    .into_iter()
    .map(|method| Route::ranked(FIRST, method, "/<_..>", RefuseRepeated))
    .collect()
}

/// The first parameter name the query gives more than once (names decoded).
pub fn repeated<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = Vec::new();
    names
        .into_iter()
        .filter(|name| !name.is_empty())
        .find(|name| {
            let again = seen.contains(name);
            seen.push(*name);
            again
        })
}

#[derive(Clone)]
struct RefuseRepeated;

#[rocket::async_trait]
impl Handler for RefuseRepeated {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> route::Outcome<'r> {
        let twice = req
            .uri()
            .query()
            .and_then(|query| repeated(query.segments().map(|(name, _)| name)));
        match twice {
            None => route::Outcome::forward(data, Status::NotFound),
            Some(name) => route::Outcome::from(
                req,
                ApiError::field(name, "is given more than once; give it once"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_repeated_name_is_found() {
        assert_eq!(repeated(["limit", "cursor", "limit"]), Some("limit"));
        assert_eq!(repeated(["limit", "cursor"]), None);
        assert_eq!(repeated(["", ""]), None);
    }
}
