//! `GET /api/tokens/balance`: the caller's balance, reserved and expiring tokens.

use rocket::serde::json::Json;
use rocket::{State, get};

use crate::auth::SessionToken;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::state::App;
use crate::tokens::ledger::{self, BalanceView};

/// The balance of the caller.
#[utoipa::path(get, path = "/api/tokens/balance", tag = "tokens", security(("bearer" = [])),
    responses(
        (status = 200, description = "Balance, reserved and expiring tokens", body = BalanceView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/balance")]
pub async fn get_balance(app: &State<App>, token: SessionToken) -> ApiResult<Json<BalanceView>> {
    let now = app.clock.now_ms();
    let view = app
        .db
        .read(move |c| {
            // The session is checked on the connection the balance is read on.
            let user = token.check(c, now)?;
            Ok::<_, ApiError>(ledger::balance(c, &user.user_id, now)?)
        })
        .await?;
    Ok(Json(view))
}
