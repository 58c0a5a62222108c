//! `GET users/{id}/tokens`, `users/{id}/ledger`, `users/{id}/lots` and `users/{id}/holds`.

use rocket::serde::json::Json;
use rocket::{State, get};
use serde::Serialize;
use utoipa::ToSchema;

use super::{MAX_PAGE, user_path};
use crate::admin::store;
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Checks;
use crate::platform::ids::UserId;
use crate::state::App;
use crate::tokens::api::checks::variant;
use crate::tokens::ledger::{self, HoldStatus, HoldView, TransactionView};
use crate::tokens::ops::admin::{self as ops, LotView, TokenSummary};

/// One ledger row as the console shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntry {
    pub id: i64,
    /// grant, spend, hold, hold_release, expire or clawback.
    pub kind: String,
    /// Signed: positive adds tokens, negative removes them.
    pub amount: i64,
    pub balance_after: i64,
    pub reference: Option<String>,
    /// The description given with the row (an admin's reason).
    pub reason: Option<String>,
    pub feature: Option<String>,
    pub hold_id: Option<String>,
    /// The lot, when the row touched exactly one.
    pub lot_id: Option<i64>,
    pub created_at: String,
}

impl From<TransactionView> for LedgerEntry {
    fn from(t: TransactionView) -> Self {
        let lots = t.lots.as_array().cloned().unwrap_or_default();
        let lot_id = match lots.as_slice() {
            [only] => only["lot"].as_i64(),
            _ => None,
        };
        LedgerEntry {
            id: t.id,
            kind: t.kind.to_string(),
            amount: t.amount,
            balance_after: t.balance_after,
            reference: t.reference,
            reason: t.description,
            feature: t.feature,
            hold_id: t.hold_id.map(|h| h.to_string()),
            lot_id,
            created_at: t.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LotsResponse {
    pub lots: Vec<LotView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldsResponse {
    pub holds: Vec<HoldView>,
}

/// Reads from the user `id` once it is known to exist (else 404).
async fn read_user<T: Send + 'static>(
    app: &App,
    id: &str,
    read: impl FnOnce(&rusqlite::Connection, &UserId, i64) -> rusqlite::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let id = user_path(id)?;
    let now = app.clock.now_ms();
    app.db
        .read(move |c| {
            store::user_row_of(c, &id, now)?.ok_or(ApiError::NotFound)?;
            Ok::<_, ApiError>(read(c, &id, now)?)
        })
        .await
}

/// The user's tokens: available, held, their sum, and what expires within 7 days.
#[utoipa::path(get, path = "/api/admin/users/{id}/tokens", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "The balance", body = TokenSummary),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/<id>/tokens")]
pub async fn tokens(
    app: &State<App>,
    _admin: AdminUser,
    id: &str,
) -> ApiResult<Json<TokenSummary>> {
    Ok(Json(read_user(app, id, ops::summary).await?))
}

/// The user's ledger, newest first.
#[utoipa::path(get, path = "/api/admin/users/{id}/ledger", tag = "admin", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The user id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[+]?0*[1-9][0-9]{0,17}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of ledger rows", body = LedgerPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/<id>/ledger?<limit>&<cursor>")]
pub async fn ledger_page(
    app: &State<App>,
    _admin: AdminUser,
    id: &str,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> ApiResult<Json<LedgerPage>> {
    let page = PageRequest::<i64>::parse(limit, cursor, 50, MAX_PAGE)?;
    let (fetch, before) = (page.fetch(), page.cursor);
    let rows = read_user(app, id, move |c, id, _| {
        ledger::transactions(c, id, None, before, fetch)
    })
    .await?;
    let page = Page::from_rows(rows, page.limit, |t| t.id);
    Ok(Json(LedgerPage {
        entries: page.items.into_iter().map(LedgerEntry::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The user's lots, newest first (at most 200).
#[utoipa::path(get, path = "/api/admin/users/{id}/lots", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "Lots", body = LotsResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/<id>/lots")]
pub async fn lots(app: &State<App>, _admin: AdminUser, id: &str) -> ApiResult<Json<LotsResponse>> {
    let lots = read_user(app, id, |c, id, _| ops::lots(c, id)).await?;
    Ok(Json(LotsResponse { lots }))
}

/// The user's holds, newest first (at most 200); an open hold past its expiry shows as expired.
#[utoipa::path(get, path = "/api/admin/users/{id}/holds", tag = "admin", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The user id"),
        ("status" = Option<String>, Query, pattern = "^(open|captured|released|expired)$", description = "open, captured, released or expired"),
    ),
    responses(
        (status = 200, description = "Holds", body = HoldsResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad status", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/<id>/holds?<status>")]
pub async fn holds(
    app: &State<App>,
    _admin: AdminUser,
    id: &str,
    status: Option<&str>,
) -> ApiResult<Json<HoldsResponse>> {
    let mut checks = Checks::default();
    let status = checks.field("status", status.map(variant::<HoldStatus>).transpose());
    let status = checks.finish(status)?;
    let holds = read_user(app, id, move |c, id, now| {
        ledger::list_holds(c, id, status, now)
    })
    .await?;
    Ok(Json(HoldsResponse { holds }))
}

/// The user's billing from our records: customer, newest subscription, its changes, purchases.
#[utoipa::path(get, path = "/api/admin/users/{id}/billing", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "Billing", body = crate::admin::billing::UserBilling),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/<id>/billing")]
pub async fn billing(
    app: &State<App>,
    _admin: AdminUser,
    id: &str,
) -> ApiResult<Json<crate::admin::billing::UserBilling>> {
    let id = user_path(id)?;
    let billing = app
        .db
        .read(move |c| Ok::<_, ApiError>(crate::admin::billing::of_user(c, &id)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(billing))
}
