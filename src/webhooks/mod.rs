//! Placeholder for webhooks (issue 4): no routes yet.

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
