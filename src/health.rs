//! `GET /health`: liveness and readiness for load balancers and operators.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    rocket.manage(Probe::new()).mount("/", routes![health])
}

/// How long a successful database probe answers for: a load balancer polling `/health`
/// under load gets its answer without queueing a read behind the users' reads. A failed
/// probe is never reused, so an outage shows within this time and a recovery at once.
const PROBE_FRESH: Duration = Duration::from_secs(1);

/// The last successful probe of the database: when it ran (in microseconds after
/// `epoch`, 0 for never) and the schema version it read.
pub struct Probe {
    epoch: Instant,
    ok_at_us: AtomicU64,
    schema_version: AtomicI64,
}

impl Probe {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            ok_at_us: AtomicU64::new(0),
            schema_version: AtomicI64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        // At least 1, so that 0 keeps meaning "never".
        u64::try_from(self.epoch.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The schema version from a successful probe younger than [`PROBE_FRESH`].
    fn fresh(&self) -> Option<i64> {
        let at = self.ok_at_us.load(Ordering::Acquire);
        let fresh = at != 0 && self.now_us().saturating_sub(at) < PROBE_FRESH.as_micros() as u64;
        fresh.then(|| self.schema_version.load(Ordering::Relaxed))
    }

    fn record(&self, version: i64) {
        self.schema_version.store(version, Ordering::Relaxed);
        self.ok_at_us.store(self.now_us(), Ordering::Release);
    }
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

/// Liveness and readiness: the database is reachable when a read of its schema version
/// succeeded within the last second. The version and the mailer mode, which tell an attacker what
/// runs here, are shown only to an admin's bearer token (or to anyone when
/// `health_details_public` is set).
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database cannot be read", body = Health),
    ))]
#[get("/health")]
pub async fn health(
    app: &State<App>,
    probe: &State<Probe>,
    admin: Option<AdminUser>,
) -> Custom<Json<Health>> {
    let details = admin.is_some() || app.settings.server.health_details_public;
    let schema_version = match probe.fresh() {
        Some(version) => Some(version),
        None => {
            let read = app.db.schema_version().await.ok();
            if let Some(version) = read {
                probe.record(version);
            }
            read
        }
    };
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
