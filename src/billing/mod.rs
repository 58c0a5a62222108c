//! Placeholder for billing (issue 4): no routes yet.

pub mod cli;

use rocket::{Route, routes};
use utoipa::OpenApi;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi()]
pub struct ApiDoc;

pub fn routes() -> Vec<Route> {
    routes![]
}

/// Routes mounted under `/api/tokens` (token-pack purchase).
pub fn token_routes() -> Vec<Route> {
    routes![]
}
