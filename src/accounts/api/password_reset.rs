//! `POST /api/auth/request-password-reset` and `/reset-password`: the emailed reset link.

use rocket::http::Status;
use rocket::response::status::Custom;
use rocket::serde::json::Json;
use rocket::{State, post};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{MessageResponse, bad_token, end_sessions, message, secs_to_ms};
use crate::accounts::one_time::{self, Purpose};
use crate::accounts::{emails, store, validate};
use crate::auth::sessions::RevokeReason;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::validate::Checks;
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::ids::UserId;
use crate::platform::mail;
use crate::state::App;

pub(crate) const RESET_TOKEN_TTL_MS: Millis = 30 * 60 * 1000;

const RESET_REQUESTED: &str = "if an account exists for that address, a reset link is on its way";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    #[schema(format = Email, max_length = 254, example = "ada@example.com")]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub token: String,
    #[schema(
        min_length = 8,
        max_length = 128,
        pattern = "^[\\s\\S]*\\S[\\s\\S]*$",
        example = "violet kettle 9 tambourine"
    )]
    pub new_password: String,
}

/// Ask for a password-reset email. The answer is the same whether or not the account exists.
#[utoipa::path(post, path = "/api/auth/request-password-reset", tag = "auth", request_body = EmailRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists)", body = MessageResponse),
        (status = 422, description = "Not an email address", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/request-password-reset", data = "<body>")]
pub async fn request_password_reset(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, EmailRequest>,
) -> ApiResult<Custom<Json<MessageResponse>>> {
    let body = parse_body(body)?;
    let mut checks = Checks::default();
    let email = checks.field("email", validate::email(&body.email));
    let email = checks.finish(email)?;
    let now = app.clock.now_ms();
    let base_url = app.settings.server.public_base_url.clone();
    let interval = secs_to_ms(app.settings.rate_limits.password_reset_email_interval_secs);
    let queued = app
        .db
        .write(move |tx| {
            let user_id = store::find_id_by_email(tx, &email)?;
            // One reset email per account per interval, so nobody can flood an inbox;
            // the answer stays the same either way.
            let recently = match &user_id {
                Some(id) => one_time::last_issued(tx, id, Purpose::ResetPassword)?
                    .is_some_and(|last| now.saturating_sub(last) < interval),
                None => false,
            };
            let event = Event::new("auth.password_reset_requested");
            let event = match &user_id {
                Some(id) => event
                    .target("user", id)
                    .details(json!({ "throttled": recently })),
                None => event.details(json!({ "email": email, "account": false })),
            };
            audit::record(tx, now, &Actor::anonymous(&client), event)?;
            match user_id.filter(|_| !recently) {
                Some(user_id) => send_reset_link(tx, &user_id, &email, &base_url, now),
                None => Ok(false),
            }
        })
        .await?;
    if queued {
        app.mail_wakeup.notify_one();
    }
    Ok(Custom(Status::Accepted, message(RESET_REQUESTED)))
}

/// Queues the reset email; true, as it was queued.
fn send_reset_link(
    tx: &rusqlite::Transaction<'_>,
    user_id: &UserId,
    email: &str,
    base_url: &str,
    now: Millis,
) -> ApiResult<bool> {
    let token = one_time::issue(tx, user_id, Purpose::ResetPassword, now, RESET_TOKEN_TTL_MS)?;
    mail::enqueue(tx, &emails::password_reset(base_url, email, &token), now)?;
    Ok(true)
}

/// Set a new password with the token from a reset email; every session is logged out.
#[utoipa::path(post, path = "/api/auth/reset-password", tag = "auth", request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "Password reset", body = MessageResponse),
        (status = 422, description = "Invalid, used or expired token, or an unacceptable password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/reset-password", data = "<body>")]
pub async fn reset_password(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, ResetPasswordRequest>,
) -> ApiResult<Json<MessageResponse>> {
    let body = parse_body(body)?;
    let mut checks = Checks::default();
    let new_password = checks.field("new_password", validate::new_password(&body.new_password));
    let new_password = checks.finish(new_password)?;
    // Check the token before paying for a hash; it is consumed only in the write below.
    let (token, now) = (body.token, app.clock.now_ms());
    let probe = token.clone();
    let owner = app
        .db
        .read(move |c| {
            let user = match one_time::usable_by(c, &probe, Purpose::ResetPassword, now)? {
                Some(user_id) => store::find_user(c, &user_id)?,
                None => None,
            };
            Ok::<_, ApiError>(user)
        })
        .await?;
    let owner = owner.ok_or_else(bad_token)?;
    let mut checks = Checks::default();
    let personal = checks.field(
        "new_password",
        validate::not_personal(&body.new_password, &owner.email),
    );
    checks.finish(personal)?;
    let new_hash = app.hasher.hash(new_password).await?;
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            let user_id = one_time::consume(tx, &token, Purpose::ResetPassword, now)?
                .ok_or_else(bad_token)?;
            store::set_password_hash(tx, &user_id, &new_hash, now)?;
            store::clear_login_failures(tx, &user_id)?;
            // Receiving the email proves the address.
            store::mark_email_verified(tx, &user_id, now)?;
            one_time::expire_all(tx, &user_id, Purpose::ResetPassword, now)?;
            let actor = Actor::user(&user_id, &client);
            let (reason, action) = (RevokeReason::PasswordReset, "auth.password_reset_completed");
            end_sessions(tx, &user_id, None, reason, action, &actor, now)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(message("password reset; log in with the new password"))
}
