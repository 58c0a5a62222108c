//! `POST users/{id}/tokens/grant`, `users/{id}/tokens/adjust` and
//! `users/{id}/holds/{hold_id}/release`: every one takes an `Idempotency-Key`, audits
//! itself and keeps the ledger's invariants.

use rocket::http::Status;
use rocket::{State, post};
use rusqlite::Transaction;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::user_tokens::LedgerEntry;
use super::{MAX_ID_LEN, reason, user_path};
use crate::admin::store;
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::idempotency::{IdempotencyHeader, Idempotent, Stored};
use crate::http::validate::{Checks, rfc3339_millis};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::Actor;
use crate::platform::clock::Millis;
use crate::platform::ids::{HoldId, UserId};
use crate::state::App;
use crate::tokens::ledger::{self, HoldView};
use crate::tokens::ops::admin::{self as ops, AdjustError};
use crate::tokens::{check_amount, grant_by_admin};

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": 500, "reason": "goodwill after an outage", "expires_at": "2030-01-31T00:00:00Z"}))]
pub struct GrantRequest {
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub amount: i64,
    #[schema(
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: String,
    /// RFC 3339, in the future; the granted tokens expire then. Absent: never.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": 200, "reason": "duplicate grant"}))]
pub struct AdjustRequest {
    /// How many tokens to take away (positive).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub amount: i64,
    #[schema(
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "the job crashed and never settled"}))]
pub struct ReleaseRequest {
    #[schema(
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceChange {
    /// The available balance after the change.
    pub balance: i64,
    pub entry: LedgerEntry,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Released {
    pub hold: HoldView,
    /// The available balance after the release.
    pub balance: i64,
}

fn expires_at(text: Option<&str>, now: Millis) -> Result<Option<Millis>, String> {
    let Some(text) = text else { return Ok(None) };
    match rfc3339_millis(text) {
        None => Err("must be an RFC 3339 time such as 2030-01-31T00:00:00Z".into()),
        Some(t) if t <= now => Err("must be in the future".into()),
        Some(t) => Ok(Some(t)),
    }
}

impl From<AdjustError> for ApiError {
    fn from(e: AdjustError) -> Self {
        match e {
            AdjustError::BelowZero { .. } => ApiError::Conflict(e.to_string()),
            AdjustError::Ledger(e) => e.into(),
        }
    }
}

/// Runs `change` once per Idempotency-Key on the existing user `id`, in one transaction.
async fn idempotent(
    app: &App,
    idem: Idempotent,
    id: UserId,
    change: impl FnOnce(&Transaction<'_>, &UserId, Millis) -> ApiResult<Stored> + Send + 'static,
) -> ApiResult<Stored> {
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                store::user_row_of(tx, &id, now)?.ok_or(ApiError::NotFound)?;
                change(tx, &id, now)
            })
        })
        .await
}

/// Grant tokens to the user: a fresh `admin` lot, optionally expiring; audited.
#[utoipa::path(post, path = "/api/admin/users/{id}/tokens/grant", tag = "admin", security(("bearer" = [])), request_body = GrantRequest,
    params(("id" = String, Path, description = "The user id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the first answer is replayed")),
    responses(
        (status = 201, description = "Granted", body = BalanceChange),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or the key was used with another request", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/tokens/grant", data = "<body>")]
pub async fn grant(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    key: IdempotencyHeader,
    id: &str,
    body: JsonBody<'_, GrantRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let id = user_path(id)?;
    let now = app.clock.now_ms();
    let operation = format!("admin.grant:{id}");
    let idem = match Idempotent::begin(&app.db, &admin, key, now, &operation, &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let mut checks = Checks::default();
    let amount = checks.field("amount", check_amount(body.amount));
    let why = checks.field("reason", reason(&body.reason));
    let expiry = checks.field("expires_at", expires_at(body.expires_at.as_deref(), now));
    let (amount, why, expiry) = checks.finish((amount, why, expiry))?;
    let actor = Actor::user(&admin.0.user_id, &client);
    idempotent(app, idem, id, move |tx, id, now| {
        let (_, entry) = grant_by_admin(tx, id, amount, &why, expiry, &actor, now)?;
        let balance = ledger::available(tx, id)?;
        Ok(Stored::json(
            Status::Created,
            &BalanceChange {
                balance,
                entry: entry.into(),
            },
        ))
    })
    .await
}

/// Take tokens away from the user, never below zero available; audited.
#[utoipa::path(post, path = "/api/admin/users/{id}/tokens/adjust", tag = "admin", security(("bearer" = [])), request_body = AdjustRequest,
    params(("id" = String, Path, description = "The user id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the first answer is replayed")),
    responses(
        (status = 201, description = "Taken away", body = BalanceChange),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "More than the available balance", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or the key was used with another request", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/tokens/adjust", data = "<body>")]
pub async fn adjust(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    key: IdempotencyHeader,
    id: &str,
    body: JsonBody<'_, AdjustRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let id = user_path(id)?;
    let now = app.clock.now_ms();
    let operation = format!("admin.adjust:{id}");
    let idem = match Idempotent::begin(&app.db, &admin, key, now, &operation, &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let mut checks = Checks::default();
    let amount = checks.field("amount", check_amount(body.amount));
    let why = checks.field("reason", reason(&body.reason));
    let (amount, why) = checks.finish((amount, why))?;
    let actor = Actor::user(&admin.0.user_id, &client);
    idempotent(app, idem, id, move |tx, id, now| {
        let (balance, entry) = ops::adjust_down(tx, id, amount, &why, &actor, now)?;
        Ok(Stored::json(
            Status::Created,
            &BalanceChange {
                balance,
                entry: entry.into(),
            },
        ))
    })
    .await
}

/// Release an open hold of the user: every reserved token returns; audited.
#[utoipa::path(post, path = "/api/admin/users/{id}/holds/{hold_id}/release", tag = "admin", security(("bearer" = [])), request_body = ReleaseRequest,
    params(("id" = String, Path, description = "The user id"), ("hold_id" = String, Path, description = "The hold id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the first answer is replayed")),
    responses(
        (status = 200, description = "Released", body = Released),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user, or no such hold of theirs", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The hold is not open", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or the key was used with another request", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/holds/<hold_id>/release", data = "<body>")]
pub async fn release(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    key: IdempotencyHeader,
    id: &str,
    hold_id: &str,
    body: JsonBody<'_, ReleaseRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let id = user_path(id)?;
    if hold_id.len() > MAX_ID_LEN {
        return Err(ApiError::NotFound);
    }
    let hold_id = HoldId::from(hold_id);
    let now = app.clock.now_ms();
    let operation = format!("admin.release:{id}:{hold_id}");
    let idem = match Idempotent::begin(&app.db, &admin, key, now, &operation, &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let mut checks = Checks::default();
    let why = checks.field("reason", reason(&body.reason));
    let why = checks.finish(why)?;
    let actor = Actor::user(&admin.0.user_id, &client);
    idempotent(app, idem, id, move |tx, id, now| {
        let (hold, balance) = ops::force_release(tx, id, &hold_id, &why, &actor, now)?;
        Ok(Stored::json(Status::Ok, &Released { hold, balance }))
    })
    .await
}
