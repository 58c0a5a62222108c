//! `POST /api/tokens/add`: an admin grants tokens to a user, audited.

use rocket::http::Status;
use rocket::{State, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::checks;
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::idempotency::{IdempotencyHeader, Idempotent, Stored};
use crate::http::validate::{Checks, line, rfc3339_millis};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::Actor;
use crate::platform::clock::Millis;
use crate::platform::ids::UserId;
use crate::state::App;
use crate::tokens::ledger::{self, TransactionView};
use crate::tokens::ops::{self, Recipient};

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    /// The recipient, by id or by email (exactly one).
    pub user_id: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000_000, example = 500)]
    pub amount: i64,
    #[schema(
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
        example = "goodwill after an outage"
    )]
    pub reason: String,
    /// RFC 3339, in the future; the tokens expire then. Absent: never.
    #[schema(format = DateTime, example = "2030-01-31T00:00:00Z")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddResponse {
    #[schema(value_type = String)]
    pub user_id: UserId,
    pub lot_id: i64,
    pub transaction: TransactionView,
    pub balance: i64,
}

fn reason(reason: &str) -> Result<String, String> {
    if reason.trim().is_empty() {
        return Err("is required".into());
    }
    line(reason, 500).map(|()| reason.to_owned())
}

fn recipient(user_id: Option<&str>, email: Option<&str>) -> Result<Recipient, String> {
    match (user_id, email) {
        (Some(id), None) => Ok(Recipient::Id(UserId::from(id))),
        (None, Some(email)) => Ok(Recipient::Email(email.to_owned())),
        _ => Err("give exactly one of user_id and email".into()),
    }
}

/// When the granted tokens expire: a future RFC 3339 time, or never.
fn expires_at(text: Option<&str>, now: Millis) -> Result<Option<Millis>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    match rfc3339_millis(text) {
        None => Err("must be an RFC 3339 time such as 2030-01-31T00:00:00Z".into()),
        Some(t) if t <= now => Err("must be in the future".into()),
        Some(t) => Ok(Some(t)),
    }
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
pub async fn add_tokens(
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
    let mut checks = Checks::default();
    let amount = checks.field("amount", checks::amount(body.amount));
    let reason = checks.field("reason", reason(&body.reason));
    let recipient = checks.field(
        "user_id",
        recipient(body.user_id.as_deref(), body.email.as_deref()),
    );
    let expires_at = checks.field("expires_at", expires_at(body.expires_at.as_deref(), now));
    let (amount, reason, recipient, expires_at) =
        checks.finish((amount, reason, recipient, expires_at))?;
    let actor = Actor::user(&admin.0.user_id, &client);
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let user_id = ops::find_recipient(tx, &recipient)?.ok_or(ApiError::NotFound)?;
                let (lot_id, transaction) =
                    ops::grant_by_admin(tx, &user_id, amount, &reason, expires_at, &actor, now)?;
                let balance = ledger::available(tx, &user_id)?;
                let response = AddResponse {
                    user_id,
                    lot_id,
                    transaction,
                    balance,
                };
                Ok(Stored::json(Status::Created, &response))
            })
        })
        .await
}
