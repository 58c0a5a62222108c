//! The token economy over HTTP (`/api/tokens`): balance, ledger, packs, spends, holds, admin grants.

pub mod analytics;
pub mod ledger;
pub mod social;

use std::time::Duration;

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{Build, Rocket, Route, State, get, post, routes};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::{AdminUser, AuthUser, SessionToken};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::idempotency::{IdempotencyHeader, Idempotent, Stored};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::{Millis, SharedClock};
use crate::platform::db::Db;
use crate::state::App;
use ledger::{BalanceView, Debit, Grant, Granted, HoldView, LedgerError, Source, TransactionView};

pub use ledger::MAX_AMOUNT;

/// Mounts the token routes under `/api/tokens` and their admin review under `/api/admin`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket
        .mount("/api/tokens", routes())
        .mount("/api/tokens", social::routes())
        .mount("/api/tokens", analytics::routes())
        .mount("/api/admin", social::admin_routes())
        .mount("/api/admin", analytics::admin_routes())
}

fn routes() -> Vec<Route> {
    routes![
        get_balance,
        list_transactions,
        list_packs,
        use_tokens,
        create_hold,
        capture_hold,
        release_hold,
        list_holds,
        add_tokens
    ]
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Insufficient { .. } => ApiError::PaymentRequired(e.to_string()),
            LedgerError::HoldNotFound => ApiError::NotFound,
            LedgerError::HoldNotOpen(_) => ApiError::Conflict(e.to_string()),
            LedgerError::CaptureTooLarge { .. } => ApiError::field("amount", e.to_string()),
            LedgerError::InvalidAmount(_) => ApiError::field("amount", e.to_string()),
            LedgerError::ReferenceConflict(_) => ApiError::Conflict(e.to_string()),
            LedgerError::Corrupt(_) | LedgerError::Sqlite(_) => ApiError::Internal(e.into()),
        }
    }
}

pub fn check_amount(amount: i64) -> Result<(), String> {
    if (1..=MAX_AMOUNT).contains(&amount) {
        Ok(())
    } else {
        Err(format!("must be a whole number from 1 to {MAX_AMOUNT}"))
    }
}

/// A capture may be 0 (the job produced nothing: everything returns).
fn check_capture(amount: i64) -> Result<(), String> {
    if (0..=MAX_AMOUNT).contains(&amount) {
        Ok(())
    } else {
        Err(format!("must be a whole number from 0 to {MAX_AMOUNT}"))
    }
}

fn check_feature(app: &App, feature: &str) -> Result<(), String> {
    if app.settings.token_features.iter().any(|f| f == feature) {
        Ok(())
    } else {
        Err(format!(
            "is not a known feature; use one of: {}",
            app.settings.token_features.join(", ")
        ))
    }
}

fn check_text(value: Option<&str>, max: usize) -> Result<(), String> {
    match value {
        Some(v) if v.chars().count() > max => Err(format!("must be at most {max} characters")),
        Some(v) if v.chars().any(char::is_control) => {
            Err("must not contain control characters".into())
        }
        _ => Ok(()),
    }
}

/// The balance of the caller.
#[utoipa::path(get, path = "/api/tokens/balance", tag = "tokens", security(("bearer" = [])),
    responses(
        (status = 200, description = "Balance, reserved and expiring tokens", body = BalanceView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/balance")]
async fn get_balance(app: &State<App>, token: SessionToken) -> ApiResult<Json<BalanceView>> {
    let now = app.clock.now_ms();
    let view = app
        .db
        .read(move |c| {
            let user = token.check(c, now)?;
            Ok::<_, ApiError>(ledger::balance(c, &user.user_id, now)?)
        })
        .await?;
    Ok(Json(view))
}

const TRANSACTION_TYPES: [&str; 6] = [
    "grant",
    "spend",
    "hold",
    "hold_release",
    "expire",
    "clawback",
];

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionPage {
    pub transactions: Vec<TransactionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The caller's ledger, newest first.
#[utoipa::path(get, path = "/api/tokens/transactions", tag = "tokens", security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("type" = Option<String>, Query, description = "grant, spend, hold, hold_release, expire or clawback"),
    ),
    responses(
        (status = 200, description = "One page", body = TransactionPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit, cursor or type", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/transactions?<limit>&<cursor>&<type>")]
async fn list_transactions(
    app: &State<App>,
    user: AuthUser,
    limit: Option<&str>,
    cursor: Option<&str>,
    r#type: Option<&str>,
) -> ApiResult<Json<TransactionPage>> {
    let limit = crate::http::pagination::page_limit(limit, 50, 200)?;
    let cursor = match cursor {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor from this list"))?,
        ),
    };
    let kind = match r#type {
        None => None,
        Some(t) if TRANSACTION_TYPES.contains(&t) => t.parse::<ledger::TransactionKind>().ok(),
        Some(_) => {
            return Err(ApiError::field(
                "type",
                format!("must be one of {}", TRANSACTION_TYPES.join(", ")),
            ));
        }
    };
    let mut transactions = app
        .db
        .read(move |c| {
            Ok::<_, ApiError>(ledger::transactions(
                c,
                &user.user_id,
                kind,
                cursor,
                limit + 1,
            )?)
        })
        .await?;
    let next_cursor = if transactions.len() > limit as usize {
        transactions.truncate(limit as usize);
        transactions.last().map(|t| t.id.to_string())
    } else {
        None
    };
    Ok(Json(TransactionPage {
        transactions,
        next_cursor,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PackView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub tokens: i64,
    pub price_cents: i64,
    pub currency: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PacksResponse {
    pub packs: Vec<PackView>,
}

/// Token packs on sale.
#[utoipa::path(get, path = "/api/tokens/packs", tag = "tokens", security(("bearer" = [])),
    responses(
        (status = 200, description = "Active packs", body = PacksResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/packs")]
async fn list_packs(app: &State<App>, _user: AuthUser) -> ApiResult<Json<PacksResponse>> {
    let packs = app
        .db
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, description, tokens, price_cents, currency FROM token_packs
                 WHERE active = 1 ORDER BY sort_order, price_cents",
            )?;
            let packs = stmt
                .query_map([], |r| {
                    Ok(PackView {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        description: r.get(2)?,
                        tokens: r.get(3)?,
                        price_cents: r.get(4)?,
                        currency: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, ApiError>(packs)
        })
        .await?;
    Ok(Json(PacksResponse { packs }))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UseRequest {
    pub amount: i64,
    /// One of the configured features (`token_features`).
    pub feature: String,
    pub description: Option<String>,
    /// A JSON object of at most 4 KiB, kept on the ledger row.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UseResponse {
    pub transaction: TransactionView,
    pub balance: i64,
}

fn record_usage(
    tx: &rusqlite::Transaction<'_>,
    user_id: &str,
    feature: &str,
    tokens: i64,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO usage_analytics (user_id, event, feature, tokens_used, created_at) VALUES (?1, 'tokens_spent', ?2, ?3, ?4)",
    )?
    .execute(
        rusqlite::params![user_id, feature, tokens, now],
    )?;
    Ok(())
}

fn available(tx: &rusqlite::Connection, user_id: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT token_balance FROM users WHERE id = ?1")?
        .query_row([user_id], |r| r.get(0))
}

/// Spend tokens on a job. Retries with the same `Idempotency-Key` spend once.
#[utoipa::path(post, path = "/api/tokens/use", tag = "tokens", security(("bearer" = [])), request_body = UseRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 200, description = "Spent", body = UseResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "Not enough tokens; the detail states the balance", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or the key was used with another request", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/use", data = "<body>")]
async fn use_tokens(
    app: &State<App>,
    token: SessionToken,
    key: IdempotencyHeader,
    body: JsonBody<'_, UseRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let idem = match Idempotent::begin(&app.db, &token, key, now, "use", &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    crate::accounts::validate::Checks::default()
        .check("amount", check_amount(body.amount))
        .check("feature", check_feature(app, &body.feature))
        .check("description", check_text(body.description.as_deref(), 500))
        .check("metadata", check_metadata(body.metadata.as_ref()))
        .finish()?;
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            // The session is checked in the spend's own transaction: one hop, not two.
            let user = token.check(tx, now)?;
            idem.run(tx, now, |tx| {
                let transaction = ledger::debit(
                    tx,
                    &Debit {
                        user_id: &user.user_id,
                        amount: body.amount,
                        feature: &body.feature,
                        description: body.description.as_deref(),
                        metadata: body.metadata.as_ref(),
                    },
                    now,
                )?;
                record_usage(tx, &user.user_id, &body.feature, body.amount, now)?;
                let balance = available(tx, &user.user_id)?;
                Ok(Stored::json(
                    Status::Ok,
                    &UseResponse {
                        transaction,
                        balance,
                    },
                ))
            })
        })
        .await
}

fn check_metadata(metadata: Option<&Value>) -> Result<(), String> {
    match metadata {
        None => Ok(()),
        Some(v) if !v.is_object() => Err("must be a JSON object".into()),
        Some(v) if v.to_string().len() > 4096 => Err("must be at most 4 KiB as JSON".into()),
        Some(_) => Ok(()),
    }
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    pub amount: i64,
    pub feature: String,
    /// How long the reservation lasts (default 600, at most `hold_max_ttl_secs`).
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldResponse {
    #[serde(flatten)]
    pub hold: HoldView,
    /// The balance after the change.
    pub balance: i64,
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
async fn create_hold(
    app: &State<App>,
    user: AuthUser,
    key: IdempotencyHeader,
    body: JsonBody<'_, HoldRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let idem = match Idempotent::begin(&app.db, &user, key, now, "hold", &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let max_ttl = app.settings.hold_max_ttl_secs;
    crate::accounts::validate::Checks::default()
        .check("amount", check_amount(body.amount))
        .check("feature", check_feature(app, &body.feature))
        .check(
            "ttl_seconds",
            match body.ttl_seconds {
                Some(ttl) if ttl == 0 || ttl > max_ttl => {
                    Err(format!("must be from 1 to {max_ttl}"))
                }
                _ => Ok(()),
            },
        )
        .finish()?;
    let ttl_ms = i64::try_from(
        body.ttl_seconds
            .unwrap_or(app.settings.hold_default_ttl_secs),
    )
    .unwrap_or(600)
        * 1000;
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let hold = ledger::create_hold(
                    tx,
                    &user.user_id,
                    body.amount,
                    &body.feature,
                    now + ttl_ms,
                    now,
                )?;
                let balance = available(tx, &user.user_id)?;
                Ok(Stored::json(
                    Status::Created,
                    &HoldResponse { hold, balance },
                ))
            })
        })
        .await
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// 0 to the reserved amount; the rest returns to the balance.
    pub amount: i64,
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
async fn capture_hold(
    app: &State<App>,
    user: AuthUser,
    key: IdempotencyHeader,
    id: &str,
    body: JsonBody<'_, CaptureRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let idem =
        match Idempotent::begin(&app.db, &user, key, now, &format!("capture {id}"), &body).await? {
            Ok(idem) => idem,
            Err(replayed) => return Ok(replayed),
        };
    crate::accounts::validate::Checks::default()
        .check("amount", check_capture(body.amount))
        .finish()?;
    let id = crate::platform::ids::HoldId::from(id);
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let hold = ledger::capture_hold(tx, &user.user_id, &id, body.amount, now)?;
                if body.amount > 0 {
                    record_usage(tx, &user.user_id, &hold.feature, body.amount, now)?;
                }
                let balance = available(tx, &user.user_id)?;
                Ok(Stored::json(Status::Ok, &HoldResponse { hold, balance }))
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
async fn release_hold(
    app: &State<App>,
    user: AuthUser,
    key: IdempotencyHeader,
    id: &str,
) -> ApiResult<Stored> {
    let now = app.clock.now_ms();
    let idem = match Idempotent::begin(
        &app.db,
        &user,
        key,
        now,
        &format!("release {id}"),
        &Value::Null,
    )
    .await?
    {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let id = crate::platform::ids::HoldId::from(id);
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let hold = ledger::release_hold(tx, &user.user_id, &id, now)?;
                let balance = available(tx, &user.user_id)?;
                Ok(Stored::json(Status::Ok, &HoldResponse { hold, balance }))
            })
        })
        .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldsResponse {
    pub holds: Vec<HoldView>,
}

const HOLD_STATUSES: [&str; 4] = ["open", "captured", "released", "expired"];

/// The caller's holds, newest first (at most 200).
#[utoipa::path(get, path = "/api/tokens/holds", tag = "tokens", security(("bearer" = [])),
    params(("status" = Option<String>, Query, description = "open, captured, released or expired")),
    responses(
        (status = 200, description = "Holds", body = HoldsResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/holds?<status>")]
async fn list_holds(
    app: &State<App>,
    user: AuthUser,
    status: Option<&str>,
) -> ApiResult<Json<HoldsResponse>> {
    let now = app.clock.now_ms();
    let status = match status {
        None => None,
        Some(s) if HOLD_STATUSES.contains(&s) => s.parse::<ledger::HoldStatus>().ok(),
        Some(_) => {
            return Err(ApiError::field(
                "status",
                format!("must be one of {}", HOLD_STATUSES.join(", ")),
            ));
        }
    };
    let holds = app
        .db
        .read(move |c| Ok::<_, ApiError>(ledger::list_holds(c, &user.user_id, status, now)?))
        .await?;
    Ok(Json(HoldsResponse { holds }))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    /// The recipient, by id or by email (exactly one).
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub amount: i64,
    pub reason: String,
    /// RFC 3339; the tokens expire then. Absent: never.
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddResponse {
    pub user_id: String,
    pub lot_id: i64,
    pub transaction: TransactionView,
    pub balance: i64,
}

/// Parses an RFC 3339 time into unix milliseconds.
pub fn parse_time(text: &str) -> Option<Millis> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Grant tokens to a user (admins only); audited.
#[utoipa::path(post, path = "/api/tokens/add", tag = "tokens", security(("bearer" = [])), request_body = AddRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, description = "Granted", body = AddResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/add", data = "<body>")]
async fn add_tokens(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    key: IdempotencyHeader,
    body: JsonBody<'_, AddRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let idem = match Idempotent::begin(&app.db, &admin, key, now, "add", &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let expires_at = body.expires_at.as_deref().map(parse_time);
    crate::accounts::validate::Checks::default()
        .check("amount", check_amount(body.amount))
        .check(
            "reason",
            if body.reason.trim().is_empty() {
                Err("is required".into())
            } else {
                check_text(Some(&body.reason), 500)
            },
        )
        .check(
            "user_id",
            match (&body.user_id, &body.email) {
                (Some(_), None) | (None, Some(_)) => Ok(()),
                _ => Err("give exactly one of user_id and email".into()),
            },
        )
        .check(
            "expires_at",
            match expires_at {
                None => Ok(()),
                Some(None) => Err("must be an RFC 3339 time such as 2030-01-31T00:00:00Z".into()),
                Some(Some(t)) if t <= now => Err("must be in the future".into()),
                Some(Some(_)) => Ok(()),
            },
        )
        .finish()?;
    let actor = Actor::user(&admin.0.user_id, &client);
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let user_id: String = match (&body.user_id, &body.email) {
                    (Some(id), _) => tx
                        .query_row("SELECT id FROM users WHERE id = ?1", [id], |r| r.get(0))
                        .optional()?,
                    (_, Some(email)) => crate::accounts::users::find_id_by_email(
                        tx,
                        &crate::accounts::validate::normalize_email(email),
                    )?,
                    _ => None,
                }
                .ok_or(ApiError::NotFound)?;
                let outcome = grant_by_admin(
                    tx,
                    &user_id,
                    body.amount,
                    &body.reason,
                    expires_at.flatten(),
                    &actor,
                    now,
                )?;
                let balance = available(tx, &user_id)?;
                Ok(Stored::json(
                    Status::Created,
                    &AddResponse {
                        user_id,
                        lot_id: outcome.0,
                        transaction: outcome.1,
                        balance,
                    },
                ))
            })
        })
        .await
}

/// An operator's grant (API or CLI): a fresh `admin` lot, audited in the same transaction.
pub fn grant_by_admin(
    tx: &rusqlite::Transaction<'_>,
    user_id: &str,
    amount: i64,
    reason: &str,
    expires_at: Option<Millis>,
    actor: &Actor,
    now: Millis,
) -> ApiResult<(i64, TransactionView)> {
    let source_ref = uuid::Uuid::now_v7().to_string();
    let granted = ledger::grant(
        tx,
        &Grant {
            user_id,
            source: Source::Admin,
            source_ref: &source_ref,
            amount,
            expires_at,
            description: Some(reason),
        },
        now,
    )?;
    let Granted::New {
        lot_id,
        transaction,
    } = granted
    else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "a fresh lot reference collided"
        )));
    };
    let lot = lot_id.to_string();
    let event = Event::new("tokens.admin_grant")
        .target("user", user_id)
        .details(json!({ "amount": amount, "reason": reason, "lot": lot, "expires_at": expires_at.map(crate::platform::clock::rfc3339) }));
    audit::record(tx, now, actor, event)?;
    Ok((lot_id, *transaction))
}

/// Expires lots and holds past their time, every `interval`, until `stop` fires.
pub async fn run_sweeper(
    db: Db,
    clock: SharedClock,
    interval: Duration,
    mut stop: rocket::Shutdown,
) {
    loop {
        // Work in bounded batches, each its own write, so a mass expiry never holds the
        // writer for long; repeat while a batch found something.
        loop {
            let now = clock.now_ms();
            let swept = db
                .write(move |tx| {
                    let tokens = ledger::expire_due(tx, None, now)?;
                    let holds = ledger::expire_holds(tx, now)?;
                    if !holds.is_empty() {
                        let event =
                            Event::new("tokens.holds_expired").details(json!({ "holds": holds }));
                        let actor = Actor {
                            user_agent: Some("sweeper".into()),
                            ..Actor::default()
                        };
                        audit::record(tx, now, &actor, event)?;
                    }
                    Ok::<_, ApiError>((tokens, holds.len()))
                })
                .await;
            match swept {
                Ok((0, 0)) => break,
                Ok((tokens, holds)) => tracing::info!(
                    tokens_expired = tokens,
                    holds_expired = holds,
                    "token sweep"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "token sweep failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = &mut stop => break,
        }
    }
}
