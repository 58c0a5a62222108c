//! `/api/tokens/holds`: reserve tokens for a job, capture or release them, list them.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{State, get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::checks;
use crate::auth::AuthUser;
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::idempotency::{IdempotencyHeader, Idempotent, Stored};
use crate::http::validate::Checks;
use crate::http::{JsonBody, parse_body};
use crate::platform::ids::HoldId;
use crate::state::App;
use crate::tokens::ledger::{self, HoldStatus, HoldView};
use crate::tokens::store;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    #[schema(minimum = 1, maximum = 1_000_000_000, example = 14)]
    pub amount: i64,
    /// One of the configured features (`token_features`).
    #[schema(example = "text_to_speech")]
    pub feature: String,
    /// How long the reservation lasts (default 600, at most `hold_max_ttl_secs`).
    #[schema(minimum = 1, example = 600)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldResponse {
    #[serde(flatten)]
    pub hold: HoldView,
    /// The balance after the change.
    pub balance: i64,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// 0 to the reserved amount; the rest returns to the balance.
    #[schema(minimum = 0, maximum = 1_000_000_000, example = 10)]
    pub amount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldsResponse {
    pub holds: Vec<HoldView>,
}

/// How long a hold lasts, in milliseconds: `ttl` seconds (1 to `max`) or `default`.
fn ttl_ms(ttl: Option<u64>, default: u64, max: u64) -> Result<i64, String> {
    let secs = match ttl {
        Some(ttl) if ttl == 0 || ttl > max => return Err(format!("must be from 1 to {max}")),
        Some(ttl) => ttl,
        None => default,
    };
    Ok(i64::try_from(secs).unwrap_or(600) * 1000)
}

/// The hold's answer: the hold as it is now and the caller's balance after the change.
fn answer(
    tx: &rusqlite::Transaction<'_>,
    status: Status,
    hold: HoldView,
    user: &AuthUser,
) -> ApiResult<Stored> {
    let balance = ledger::available(tx, &user.user_id)?;
    Ok(Stored::json(status, &HoldResponse { hold, balance }))
}

/// Reserve tokens for a job; capture or release them later.
#[utoipa::path(post, path = "/api/tokens/holds", tag = "tokens", security(("bearer" = [])), request_body = HoldRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, description = "Reserved", body = HoldResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "Not enough tokens", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/holds", data = "<body>")]
pub async fn create_hold(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    key: IdempotencyHeader,
    body: JsonBody<'_, HoldRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let idem = match Idempotent::begin(&app.db, &user, key, now, "hold", &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let settings = &app.settings;
    let mut checks = Checks::default();
    let amount = checks.field("amount", checks::amount(body.amount));
    let feature = checks.field(
        "feature",
        checks::feature(&settings.tokens.token_features, &body.feature),
    );
    let ttl_ms = checks.field(
        "ttl_seconds",
        ttl_ms(
            body.ttl_seconds,
            settings.tokens.hold_default_ttl_secs,
            settings.tokens.hold_max_ttl_secs,
        ),
    );
    let (amount, feature, ttl_ms) = checks.finish((amount, feature, ttl_ms))?;
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let hold =
                    ledger::create_hold(tx, &user.user_id, amount, &feature, now + ttl_ms, now)?;
                answer(tx, Status::Created, hold, &user)
            })
        })
        .await
}

/// Spend (part of) a hold.
#[utoipa::path(post, path = "/api/tokens/holds/{id}/capture", tag = "tokens", security(("bearer" = [])), request_body = CaptureRequest,
    params(("id" = String, Path, description = "The hold id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 200, description = "Captured", body = HoldResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such hold of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The hold is captured, released or expired", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than the reserved amount", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/holds/<id>/capture", data = "<body>")]
pub async fn capture_hold(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    key: IdempotencyHeader,
    id: &str,
    body: JsonBody<'_, CaptureRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let operation = format!("capture {id}");
    let idem = match Idempotent::begin(&app.db, &user, key, now, &operation, &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let mut checks = Checks::default();
    let amount = checks.field("amount", checks::capture(body.amount));
    let amount = checks.finish(amount)?;
    let id = HoldId::from(id);
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let hold = ledger::capture_hold(tx, &user.user_id, &id, amount, now)?;
                if amount > 0 {
                    store::record_usage(tx, &user.user_id, &hold.feature, amount, now)?;
                }
                answer(tx, Status::Ok, hold, &user)
            })
        })
        .await
}

/// Give every reserved token of a hold back.
#[utoipa::path(post, path = "/api/tokens/holds/{id}/release", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "The hold id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 200, description = "Released", body = HoldResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such hold of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The hold is captured, released or expired", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/holds/<id>/release")]
pub async fn release_hold(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    key: IdempotencyHeader,
    id: &str,
) -> ApiResult<Stored> {
    let now = app.clock.now_ms();
    let operation = format!("release {id}");
    let idem = match Idempotent::begin(&app.db, &user, key, now, &operation, &Value::Null).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let id = HoldId::from(id);
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let hold = ledger::release_hold(tx, &user.user_id, &id, now)?;
                answer(tx, Status::Ok, hold, &user)
            })
        })
        .await
}

/// The caller's holds, newest first (at most 200).
#[utoipa::path(get, path = "/api/tokens/holds", tag = "tokens", security(("bearer" = [])),
    params(("status" = Option<String>, Query, pattern = "^(open|captured|released|expired)$", description = "open, captured, released or expired")),
    responses(
        (status = 200, description = "Holds", body = HoldsResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/holds?<status>")]
pub async fn list_holds(
    app: &State<App>,
    user: AuthUser,
    status: Option<&str>,
) -> ApiResult<Json<HoldsResponse>> {
    let now = app.clock.now_ms();
    let mut checks = Checks::default();
    let status = checks.field(
        "status",
        status.map(checks::variant::<HoldStatus>).transpose(),
    );
    let status = checks.finish(status)?;
    let holds = app
        .db
        .read(move |c| Ok::<_, ApiError>(ledger::list_holds(c, &user.user_id, status, now)?))
        .await?;
    Ok(Json(HoldsResponse { holds }))
}
