//! The account endpoints under `/api/auth`, one flow per file, and what they share.

pub mod change_password;
pub mod login;
pub mod logout;
pub mod mfa_disable;
pub mod mfa_enrol;
pub mod mfa_verify;
pub mod password_reset;
pub mod profile;
pub mod refresh;
pub mod register;
pub mod sessions;
pub mod unlock;
pub mod verify_email;

use rocket::serde::json::Json;
use serde::Serialize;
use utoipa::ToSchema;

use rusqlite::Transaction;
use serde_json::json;

use super::store::UserView;
use crate::auth::sessions::{Lifetime, NewSession, RevokeReason, revoke_all};
use crate::http::error::{ApiError, ApiResult};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::ids::{SessionId, UserId};
use crate::state::App;

/// How long the link of a verification email works.
pub(crate) const VERIFY_TOKEN_TTL_MS: Millis = 48 * 3600 * 1000;

/// A new session: the user, a short-lived access token and a refresh token.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthResponse {
    pub user: UserView,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    #[schema(value_type = String)]
    pub session_id: SessionId,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedResponse {
    pub message: String,
    /// How many sessions were revoked.
    pub sessions_revoked: usize,
}

fn message(text: &str) -> Json<MessageResponse> {
    Json(MessageResponse {
        message: text.to_owned(),
    })
}

/// The answer of register, login and refresh: an access token for `session`.
fn auth_response(app: &App, user: UserView, session: NewSession) -> ApiResult<AuthResponse> {
    let access_token = app.jwt.issue(
        &user.id,
        &session.session_id,
        user.role,
        app.clock.now_secs(),
    )?;
    Ok(AuthResponse {
        user,
        access_token,
        refresh_token: session.refresh_token,
        token_type: "Bearer",
        expires_in: app.jwt.ttl_secs,
        session_id: session.session_id,
    })
}

/// How long sessions last: `refresh_token_ttl_days` at most, `session_idle_timeout_secs` unused.
fn session_lifetime(app: &App) -> Lifetime {
    let auth = &app.settings.auth;
    Lifetime {
        absolute_ms: i64::try_from(auth.refresh_token_ttl_days)
            .unwrap_or(3650)
            .saturating_mul(24 * 3600 * 1000),
        idle_ms: secs_to_ms(auth.session_idle_timeout_secs),
    }
}

fn secs_to_ms(secs: u64) -> Millis {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// Ends every session of `user_id` but `keep` and audits `action` with how many ended.
fn end_sessions(
    tx: &Transaction<'_>,
    user_id: &UserId,
    keep: Option<&SessionId>,
    reason: RevokeReason,
    action: &str,
    actor: &Actor,
    now: Millis,
) -> rusqlite::Result<usize> {
    let count = revoke_all(tx, user_id, keep, reason, now)?;
    let event = Event::new(action)
        .target("user", user_id)
        .details(json!({ "sessions_revoked": count }));
    audit::record(tx, now, actor, event)?;
    Ok(count)
}

/// The 422 of a one-time token that cannot be used.
fn bad_token() -> ApiError {
    ApiError::field("token", "is invalid, already used or expired")
}
