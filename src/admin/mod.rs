//! The admin API (`/api/admin`) and the embedded admin UI (`/admin`).

pub mod api;
pub mod store;
pub mod ui;

use rocket::{Build, Rocket, routes};
use utoipa::OpenApi;

use api::{shortfalls, users};

/// Mounts the admin API under `/api/admin` and the console under `/admin`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket
        .mount(
            "/api/admin",
            routes![users::list_users, shortfalls::list_shortfalls],
        )
        .mount("/admin", routes![ui::ui_index, ui::ui_asset])
}

/// The admin paths of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(users::list_users, shortfalls::list_shortfalls))]
pub struct ApiDoc;
