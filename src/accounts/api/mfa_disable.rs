//! `POST /api/auth/mfa/totp/disable`: turn two-factor sign-in off, with the password and
//! a current code (or an unused recovery code). A wrong code counts toward the
//! account's lockout like a wrong password.

use rocket::serde::json::Json;
use rocket::{State, post};
use serde::Deserialize;
use utoipa::ToSchema;

use super::change_password::verify_current;
use super::mfa_enrol::credentials;
use super::{MessageResponse, message};
use crate::accounts::emails::MfaChange;
use crate::accounts::lockout::AccountLockout;
use crate::accounts::mfa::{self, Attempt, Proof, ops, seal_key, store};
use crate::auth::AuthUser;
use crate::auth::mfa::mfa_enabled;
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::Actor;
use crate::state::App;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisableRequest {
    pub password: String,
    /// A current 6-digit code, or an unused recovery code.
    pub code: String,
}

/// Turn two-factor sign-in off; the recovery codes stop working too.
#[utoipa::path(post, path = "/api/auth/mfa/totp/disable", tag = "auth", security(("bearer" = [])), request_body = TotpDisableRequest,
    responses(
        (status = 200, description = "Off", body = MessageResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor sign-in is not on", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong password, or a wrong or used code", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed checks for this account", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/mfa/totp/disable", data = "<body>")]
pub async fn disable(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    client: ClientInfo,
    body: JsonBody<'_, TotpDisableRequest>,
) -> ApiResult<Json<MessageResponse>> {
    let body = parse_body(body)?;
    let account = credentials(app, &user).await?;
    let user_id = user.user_id.clone();
    if !app
        .db
        .read(move |c| Ok::<_, ApiError>(mfa_enabled(c, &user_id)?))
        .await?
    {
        return Err(ApiError::Conflict(
            "two-factor authentication is not on".into(),
        ));
    }
    let (field, action) = ("password", "auth.mfa_disable_failed");
    verify_current(app, &user, &client, &account, body.password, field, action).await?;
    let proof = Proof::either(app.jwt.derived(), &body.code);
    let (lockout, seal, now) = (AccountLockout::of(app), seal_key(app), app.clock.now_ms());
    let base_url = app.settings.server.public_base_url.clone();
    let (actor, target) = (Actor::user(&user.user_id, &client), account.clone());
    let attempt = app
        .db
        .write(move |tx| {
            // The password was right: only the code may count as a failure.
            mfa::refund_password_attempt(tx, &target.id, now, &lockout.policy, None)?;
            let attempt = mfa::attempt(tx, &lockout, &seal, &target.id, &proof, now)?;
            if let Attempt::Accepted(_) = attempt {
                store::remove(tx, &target.id)?;
                ops::record_change(tx, &base_url, &target, MfaChange::Disabled, &actor, now)?;
            }
            Ok::<_, ApiError>(attempt)
        })
        .await?;
    if let Attempt::Refused { locks_until } = attempt {
        let actor = Actor::user(&user.user_id, &client);
        mfa::record_refusal(app, actor, &account, locks_until, "disable").await?;
        return Err(ApiError::field("code", "is incorrect or already used"));
    }
    app.mail_wakeup.notify_one();
    Ok(message("two-factor authentication is off"))
}
