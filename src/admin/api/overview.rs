//! `GET overview`, `GET system` and `GET checks/ledger`.

use std::collections::BTreeMap;

use rocket::serde::json::Json;
use rocket::{State, get};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use crate::admin::overview::{self, Backlogs, LastLedgerCheck, Overview};
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::clock::rfc3339;
use crate::platform::db::schema_version;
use crate::state::App;
use crate::tokens::ops::check;
use crate::webhooks::key_livemode;

#[derive(Debug, Serialize, ToSchema)]
pub struct StripeState {
    /// Whether STRIPE_SECRET_KEY is set.
    pub configured: bool,
    /// `test` or `live`, from the key; null without one.
    pub mode: Option<String>,
    /// How many webhook signing secrets are configured.
    pub webhook_secrets: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SystemInfo {
    pub version: String,
    pub schema_version: i64,
    pub uptime_secs: u64,
    pub db_bytes: u64,
    pub wal_bytes: u64,
    /// `smtp`, or `log` when SMTP_URL is unset (emails only logged).
    pub email_mode: String,
    pub stripe: StripeState,
    pub backlogs: Backlogs,
    /// Every effective setting; secrets are `********`.
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerMismatch {
    pub user_id: String,
    pub email: String,
    /// What the ledger adds up to.
    pub expected: i64,
    /// The cached balance.
    pub actual: i64,
    pub lots_remaining: i64,
    pub cached_held: i64,
    pub open_holds: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerCheckReport {
    pub clean: bool,
    pub users_checked: u64,
    pub mismatches: Vec<LedgerMismatch>,
    pub checked_at: String,
}

/// What needs attention, the key figures and 30 days of spending.
#[utoipa::path(get, path = "/api/admin/overview", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The overview", body = Overview),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/overview")]
pub async fn get_overview(
    app: &State<App>,
    last_check: &State<LastLedgerCheck>,
    _admin: AdminUser,
) -> ApiResult<Json<Overview>> {
    let now = app.clock.now_ms();
    let last_check = last_check.get();
    let view = app
        .db
        .read(move |c| Ok::<_, ApiError>(overview::overview(c, now, last_check)?))
        .await?;
    Ok(Json(view))
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Version, schema, uptime, storage, integrations, backlogs and the masked configuration.
#[utoipa::path(get, path = "/api/admin/system", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The system", body = SystemInfo),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/system")]
pub async fn get_system(app: &State<App>, _admin: AdminUser) -> ApiResult<Json<SystemInfo>> {
    let (schema, backlogs) = app
        .db
        .read(|c| Ok::<_, ApiError>((schema_version(c)?, overview::backlogs(c)?)))
        .await?;
    let settings = &app.settings;
    let db = settings.database_path();
    let wal = db.with_extension("db-wal");
    let secrets = settings
        .secrets
        .stripe_webhook_secret
        .as_ref()
        .map(|s| s.expose_secret().to_owned())
        .unwrap_or_default();
    Ok(Json(SystemInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: schema,
        uptime_secs: app.started_at.elapsed().as_secs(),
        db_bytes: file_len(&db),
        wal_bytes: file_len(&wal),
        email_mode: if app.mailer.is_development() {
            "log"
        } else {
            "smtp"
        }
        .to_owned(),
        stripe: StripeState {
            configured: settings.secrets.stripe_secret_key.is_some(),
            mode: key_livemode(settings).map(|live| if live { "live" } else { "test" }.to_owned()),
            webhook_secrets: secrets.split(',').filter(|s| !s.trim().is_empty()).count(),
        },
        backlogs,
        config: settings.describe().into_iter().collect(),
    }))
}

/// The money invariants for every user (`audiostudio check`), as JSON.
#[utoipa::path(get, path = "/api/admin/checks/ledger", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The check", body = LedgerCheckReport),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/checks/ledger")]
pub async fn ledger_check(
    app: &State<App>,
    last_check: &State<LastLedgerCheck>,
    _admin: AdminUser,
) -> ApiResult<Json<LedgerCheckReport>> {
    let now = app.clock.now_ms();
    let (users, mismatches) = app.db.read(|c| Ok::<_, ApiError>(check(c)?)).await?;
    last_check.record(now, mismatches.is_empty());
    Ok(Json(LedgerCheckReport {
        clean: mismatches.is_empty(),
        users_checked: users,
        mismatches: mismatches
            .into_iter()
            .map(|m| LedgerMismatch {
                user_id: m.user_id.to_string(),
                email: m.email,
                expected: m.ledger_sum,
                actual: m.cached_balance,
                lots_remaining: m.lots_remaining,
                cached_held: m.cached_held,
                open_holds: m.open_holds,
            })
            .collect(),
        checked_at: rfc3339(now),
    }))
}
