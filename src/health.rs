//! `GET /health`: liveness and readiness for load balancers and operators.

use rocket::http::Status;
use rocket::response::status::Custom;
use rocket::serde::json::Json;
use rocket::{Build, Rocket, State, get, routes};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::auth::AdminUser;
use crate::state::App;

/// Mounts `/health`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket.mount("/", routes![health])
}

/// The health path of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(health))]
pub struct ApiDoc;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the database cannot be read.
    pub status: &'static str,
    /// The release; shown to admins, or to anyone with `health_details_public`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    /// The highest applied migration; null when the database cannot be read.
    pub schema_version: Option<i64>,
    pub database_reachable: bool,
    pub uptime_seconds: u64,
    /// Whether email goes through SMTP or only to the log; shown like `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'static str>,
}

/// Liveness and readiness. The version and the mailer mode, which tell an attacker what
/// runs here, are shown only to an admin's bearer token (or to anyone when
/// `health_details_public` is set).
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database cannot be read", body = Health),
    ))]
#[get("/health")]
pub async fn health(app: &State<App>, admin: Option<AdminUser>) -> Custom<Json<Health>> {
    let details = admin.is_some() || app.settings.server.health_details_public;
    let schema_version = app.db.schema_version().await.ok();
    let reachable = schema_version.is_some();
    let status = if reachable {
        Status::Ok
    } else {
        Status::ServiceUnavailable
    };
    Custom(
        status,
        Json(Health {
            status: if reachable { "ok" } else { "degraded" },
            version: details.then_some(env!("CARGO_PKG_VERSION")),
            schema_version,
            database_reachable: reachable,
            uptime_seconds: app.started_at.elapsed().as_secs(),
            email: details.then_some(if app.mailer.is_development() {
                "log (development)"
            } else {
                "smtp"
            }),
        }),
    )
}
