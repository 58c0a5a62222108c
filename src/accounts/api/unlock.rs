//! `POST /api/auth/unlock-account`: the link emailed when failed logins lock an account.

use rocket::serde::json::Json;
use rocket::{State, post};

use super::verify_email::TokenRequest;
use super::{MessageResponse, bad_token, message};
use crate::accounts::lockout;
use crate::accounts::store;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::state::App;

/// Lift a lockout with the token from the email sent when it began.
///
/// The token names one lock: it works once, and only while that lock lasts.
#[utoipa::path(post, path = "/api/auth/unlock-account", tag = "auth", request_body = TokenRequest,
    responses(
        (status = 200, description = "Unlocked", body = MessageResponse),
        (status = 422, description = "Invalid, used or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/unlock-account", data = "<body>")]
pub async fn unlock_account(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, TokenRequest>,
) -> ApiResult<Json<MessageResponse>> {
    let body = parse_body(body)?;
    let (user_id, until) =
        lockout::parse_unlock_token(app.jwt.derived(), &body.token).ok_or_else(bad_token)?;
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            let locked_until = match lockout::login_counter(tx, &user_id) {
                Ok(counter) => counter.locked_until,
                Err(rusqlite::Error::QueryReturnedNoRows) => None,
                Err(e) => return Err(e.into()),
            };
            if locked_until != Some(until) || until <= now {
                return Err(bad_token());
            }
            store::clear_login_failures(tx, &user_id)?;
            let event = Event::new("auth.account_unlocked").target("user", &user_id);
            audit::record(tx, now, &Actor::user(&user_id, &client), event)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(message("account unlocked; you can log in"))
}
