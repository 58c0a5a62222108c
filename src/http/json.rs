//! JSON request bodies whose errors become problem responses with a useful detail.

use rocket::serde::json::{self, Json};
use serde_json::error::Category;

use crate::http::error::ApiError;

/// A JSON body guard that never fails on its own: the handler turns its error into a problem.
pub type JsonBody<'r, T> = Result<Json<T>, json::Error<'r>>;

pub fn parse_body<T>(body: JsonBody<'_, T>) -> Result<T, ApiError> {
    match body {
        Ok(Json(value)) => Ok(value),
        Err(json::Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(ApiError::PayloadTooLarge)
        }
        Err(json::Error::Io(e)) => Err(ApiError::BadRequest(format!(
            "the body could not be read: {e}"
        ))),
        Err(json::Error::Parse(_, e)) => match e.classify() {
            Category::Data => Err(ApiError::Unprocessable(format!(
                "the body does not have the expected shape: {e}"
            ))),
            _ => Err(ApiError::BadRequest(format!(
                "the body is not valid JSON: {e}"
            ))),
        },
    }
}
