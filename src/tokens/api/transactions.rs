//! `GET /api/tokens/transactions`: the caller's ledger, newest first, a page at a time.

use rocket::serde::json::Json;
use rocket::{State, get};
use serde::Serialize;
use utoipa::ToSchema;

use super::checks;
use crate::auth::AuthUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Checks;
use crate::state::App;
use crate::tokens::ledger::{self, TransactionKind, TransactionView};

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionPage {
    pub transactions: Vec<TransactionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The caller's ledger, newest first.
#[utoipa::path(get, path = "/api/tokens/transactions", tag = "tokens", security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[+]?0*[1-9][0-9]{0,17}$", description = "`next_cursor` of the previous page"),
        ("type" = Option<String>, Query, pattern = "^(grant|spend|hold|hold_release|expire|clawback)$", description = "grant, spend, hold, hold_release, expire or clawback"),
    ),
    responses(
        (status = 200, description = "One page", body = TransactionPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit, cursor or type", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/transactions?<limit>&<cursor>&<type>")]
pub async fn list_transactions(
    app: &State<App>,
    user: AuthUser,
    limit: Option<&str>,
    cursor: Option<&str>,
    r#type: Option<&str>,
) -> ApiResult<Json<TransactionPage>> {
    let request = PageRequest::<i64>::parse(limit, cursor, 50, 200)?;
    let mut checks = Checks::default();
    let kind = checks.field(
        "type",
        r#type.map(checks::variant::<TransactionKind>).transpose(),
    );
    let kind = checks.finish(kind)?;
    let fetch = request.fetch();
    let rows = app
        .db
        .read(move |c| {
            let rows = ledger::transactions(c, &user.user_id, kind, request.cursor, fetch)?;
            Ok::<_, ApiError>(rows)
        })
        .await?;
    let page = Page::from_rows(rows, request.limit, |t| t.id);
    Ok(Json(TransactionPage {
        transactions: page.items,
        next_cursor: page.next_cursor,
    }))
}
