//! `POST /api/auth/change-password`: a new password for the caller; other sessions end.

use rocket::serde::json::Json;
use rocket::{State, post};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{AccountLockout, RevokedResponse, end_sessions};
use crate::accounts::one_time::{self, Purpose};
use crate::accounts::store::{self, Credentials};
use crate::accounts::validate;
use crate::auth::AuthUser;
use crate::auth::password::MAX_LEN;
use crate::auth::sessions::{self, RevokeReason};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::validate::Checks;
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::state::App;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

fn incorrect() -> ApiError {
    ApiError::field("current_password", "is incorrect")
}

/// Change the password; every other session is logged out.
#[utoipa::path(post, path = "/api/auth/change-password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed", body = RevokedResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Current password wrong, or the new one is not acceptable", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/change-password", data = "<body>")]
pub async fn change_password(
    app: &State<App>,
    user: AuthUser,
    client: ClientInfo,
    body: JsonBody<'_, ChangePasswordRequest>,
) -> ApiResult<Json<RevokedResponse>> {
    let body = parse_body(body)?;
    let mut checks = Checks::default();
    let new_password = checks.field("new_password", validate::new_password(&body.new_password));
    let new_password = checks.finish(new_password)?;
    if body.current_password.chars().count() > MAX_LEN {
        return Err(incorrect());
    }
    let account = verify_current(app, &user, &client, body.current_password).await?;
    let new_hash = app.hasher.hash(new_password).await?;
    let now = app.clock.now_ms();
    let count = app
        .db
        .write(move |tx| {
            // Hashing happened outside the transaction: the session must still be live
            // and the password still the one verified (a reset may have happened since).
            if sessions::active_session_user(tx, &user.session_id, &user.user_id, now)?.is_none() {
                return Err(ApiError::Unauthorized(
                    "the session has ended; log in again",
                ));
            }
            if !store::replace_password_hash(
                tx,
                &user.user_id,
                &account.password_hash,
                &new_hash,
                now,
            )? {
                return Err(ApiError::Conflict(
                    "the password was changed meanwhile; try again".into(),
                ));
            }
            one_time::expire_all(tx, &user.user_id, Purpose::ResetPassword, now)?;
            let (keep, actor) = (Some(&user.session_id), Actor::user(&user.user_id, &client));
            let (reason, action) = (RevokeReason::PasswordChanged, "auth.password_changed");
            let count = end_sessions(tx, &user.user_id, keep, reason, action, &actor, now)?;
            Ok::<_, ApiError>(count)
        })
        .await?;
    Ok(Json(RevokedResponse {
        message: "password changed; other sessions were logged out".into(),
        sessions_revoked: count,
    }))
}

/// The caller's credentials, once `current` is proven to be their password. Guessing it
/// counts as failed logins: a stolen access token must not allow unlimited guesses.
async fn verify_current(
    app: &App,
    user: &AuthUser,
    client: &ClientInfo,
    current: String,
) -> ApiResult<Credentials> {
    let user_id = user.user_id.clone();
    let account = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::credentials_by_id(c, &user_id)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    let lockout = AccountLockout::of(app);
    lockout.refuse_if_locked(account.locked_until, app.clock.now_ms())?;
    let stored = Some(account.password_hash.clone());
    let verified = app
        .hasher
        .verify(SecretString::from(current), stored)
        .await?;
    if verified.matches {
        return Ok(account);
    }
    let (now, actor, user_id) = (
        app.clock.now_ms(),
        Actor::user(&user.user_id, client),
        user.user_id.clone(),
    );
    app.db
        .write(move |tx| {
            let locked_until = store::record_login_failure(tx, &user_id, now, &lockout.policy)?;
            let event = Event::new("auth.password_change_failed")
                .target("user", &user_id)
                .details(json!({ "locked": locked_until.is_some() }));
            Ok::<_, ApiError>(audit::record(tx, now, &actor, event)?)
        })
        .await?;
    Err(incorrect())
}
