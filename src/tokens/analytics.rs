//! Placeholder: analytics routes are being written.

use rocket::{Route, routes};

pub fn routes() -> Vec<Route> {
    routes![]
}

pub fn admin_routes() -> Vec<Route> {
    routes![]
}
