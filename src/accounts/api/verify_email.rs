//! `POST /api/auth/verify-email` and `/resend-verification`: proving the email address.

use rocket::http::Status;
use rocket::response::status::Custom;
use rocket::serde::json::Json;
use rocket::{State, post};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{MessageResponse, VERIFY_TOKEN_TTL_MS, bad_token, message, secs_to_ms};
use crate::accounts::one_time::{self, Purpose};
use crate::accounts::{emails, store};
use crate::auth::AuthUser;
use crate::http::error::{ApiError, ApiResult, Problem, Throttle};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::mail;
use crate::state::App;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

/// Confirm an email address with the token from the verification email.
#[utoipa::path(post, path = "/api/auth/verify-email", tag = "auth", request_body = TokenRequest,
    responses(
        (status = 200, description = "Verified", body = MessageResponse),
        (status = 422, description = "Invalid, used or expired token", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/verify-email", data = "<body>")]
pub async fn verify_email(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, TokenRequest>,
) -> ApiResult<Json<MessageResponse>> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            let user_id = one_time::consume(tx, &body.token, Purpose::VerifyEmail, now)?
                .ok_or_else(bad_token)?;
            store::mark_email_verified(tx, &user_id, now)?;
            let event = Event::new("auth.email_verified").target("user", &user_id);
            let actor = Actor::user(&user_id, &client);
            Ok::<_, ApiError>(audit::record(tx, now, &actor, event)?)
        })
        .await?;
    Ok(message("email address verified"))
}

/// The 429 of a resend within `interval` of the `last` one.
fn sent_moments_ago(last: Millis, interval: Millis, now: Millis) -> ApiError {
    ApiError::TooManyRequests {
        detail: "a verification email was sent moments ago; check your inbox".into(),
        throttle: Throttle {
            retry_after_secs: u64::try_from((last + interval - now + 999) / 1000).unwrap_or(1),
            limit: 1,
            window_secs: u64::try_from(interval / 1000).unwrap_or(60),
        },
    }
}

/// Send the verification email again (at most once a minute by default).
#[utoipa::path(post, path = "/api/auth/resend-verification", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = MessageResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already verified", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Asked again too soon", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/resend-verification")]
pub async fn resend_verification(
    app: &State<App>,
    user: AuthUser,
) -> ApiResult<Custom<Json<MessageResponse>>> {
    let now = app.clock.now_ms();
    let interval = secs_to_ms(app.settings.rate_limits.resend_verification_interval_secs);
    let base_url = app.settings.server.public_base_url.clone();
    app.db
        .write(move |tx| {
            let account = store::find_user(tx, &user.user_id)?.ok_or(ApiError::NotFound)?;
            if account.email_verified {
                return Err(ApiError::Conflict(
                    "the email address is already verified".into(),
                ));
            }
            if let Some(last) = one_time::last_issued(tx, &user.user_id, Purpose::VerifyEmail)?
                && now - last < interval
            {
                return Err(sent_moments_ago(last, interval, now));
            }
            let purpose = Purpose::VerifyEmail;
            let token = one_time::issue(tx, &user.user_id, purpose, now, VERIFY_TOKEN_TTL_MS)?;
            let email = emails::verification(&base_url, &account.email, &token);
            Ok(mail::enqueue(tx, &email, now)?)
        })
        .await?;
    app.mail_wakeup.notify_one();
    Ok(Custom(
        Status::Accepted,
        message("a new verification email is on its way"),
    ))
}
