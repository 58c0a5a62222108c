//! `POST /api/auth/change-password`: a new password for the caller; other sessions end.

use rocket::serde::json::Json;
use rocket::{State, post};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{RevokedResponse, end_sessions};
use crate::accounts::lockout::{self, AccountLockout, LockNotice};
use crate::accounts::one_time::{self, Purpose};
use crate::accounts::store::{self, Credentials};
use crate::accounts::validate;
use crate::auth::AuthUser;
use crate::auth::password::MAX_LEN;
use crate::auth::sessions::{self, RevokeReason};
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::validate::Checks;
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::state::App;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    #[schema(
        min_length = 8,
        max_length = 128,
        pattern = "^[\\s\\S]*\\S[\\s\\S]*$",
        example = "violet kettle 9 tambourine"
    )]
    pub new_password: String,
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
    _limit: UserLimit,
    client: ClientInfo,
    body: JsonBody<'_, ChangePasswordRequest>,
) -> ApiResult<Json<RevokedResponse>> {
    let body = parse_body(body)?;
    let mut checks = Checks::default();
    let new_password = checks.field("new_password", validate::new_password(&body.new_password));
    let new_password = checks.finish(new_password)?;
    let user_id = user.user_id.clone();
    let account = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::credentials_by_id(c, &user_id)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut checks = Checks::default();
    let personal = checks.field(
        "new_password",
        validate::not_personal(&body.new_password, &account.email),
    );
    checks.finish(personal)?;
    let (field, action) = ("current_password", "auth.password_change_failed");
    verify_current(
        app,
        &user,
        &client,
        &account,
        body.current_password,
        field,
        action,
    )
    .await?;
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
            store::clear_login_failures(tx, &user.user_id)?;
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

/// Proves `current` is the caller's password (a 422 on `field` when not, audited as
/// `action`). Guessing it counts as failed logins (the same reservation as login): a
/// stolen access token must not allow unlimited guesses.
pub(super) async fn verify_current(
    app: &App,
    user: &AuthUser,
    client: &ClientInfo,
    account: &Credentials,
    current: String,
    field: &'static str,
    action: &'static str,
) -> ApiResult<()> {
    let (lockout, now, user_id) = (
        AccountLockout::of(app),
        app.clock.now_ms(),
        account.id.clone(),
    );
    let reservation = app
        .db
        .write(move |tx| {
            Ok::<_, ApiError>(lockout::reserve_account(
                tx,
                &user_id,
                now,
                &lockout.policy,
            )?)
        })
        .await?;
    let locks_until = lockout.admit(reservation, now)?;
    // No account has a longer password; hashing megabytes of input would only cost us.
    if current.chars().count() <= MAX_LEN {
        let stored = Some(account.password_hash.clone());
        let verified = app
            .hasher
            .verify(SecretString::from(current), stored)
            .await?;
        if verified.matches {
            return Ok(());
        }
    }
    let (now, actor, user_id) = (
        app.clock.now_ms(),
        Actor::user(&user.user_id, client),
        user.user_id.clone(),
    );
    let notice = LockNotice::new(app, account, locks_until);
    let queued = app
        .db
        .write(move |tx| {
            let event = Event::new(action)
                .target("user", &user_id)
                .details(json!({ "locked": locks_until.is_some() }));
            audit::record(tx, now, &actor, event)?;
            let queued = match &notice {
                Some(notice) => notice.send(tx, now)?,
                None => false,
            };
            Ok::<_, ApiError>(queued)
        })
        .await?;
    if queued {
        app.mail_wakeup.notify_one();
    }
    Err(ApiError::field(field, "is incorrect"))
}
