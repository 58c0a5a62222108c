//! The admin endpoints, one flow per file, each mounted under `/api/admin` (a Bearer
//! access token) and `/admin/api` (the console's cookie) through the one admin guard.

pub mod audit;
pub mod backups;
pub mod claims;
pub mod overview;
pub mod session;
pub mod session_mfa;
pub mod shortfalls;
pub mod token_changes;
pub mod user_actions;
pub mod user_mail;
pub mod user_sessions;
pub mod user_tokens;
pub mod users;
pub mod webhooks;

use crate::http::error::{ApiError, ApiResult};
use crate::http::validate::line;
use crate::platform::ids::UserId;

/// The largest page an admin list returns.
const MAX_PAGE: u32 = 200;
/// The longest id any of our tables holds (UUIDs, Stripe ids).
const MAX_ID_LEN: usize = 255;

/// A user id from the path: anything longer than an id is no user at all (404).
fn user_path(id: &str) -> ApiResult<UserId> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(ApiError::NotFound);
    }
    Ok(UserId::from(id))
}

/// A user id given as a query filter.
fn user_id_param(id: &str) -> ApiResult<String> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(ApiError::field("user_id", "is not a user id"));
    }
    Ok(id.to_owned())
}

/// A required reason: one line of 1 to 500 characters.
fn reason(reason: &str) -> Result<String, String> {
    if reason.trim().is_empty() {
        return Err("is required".into());
    }
    line(reason, 500).map(|()| reason.trim().to_owned())
}

/// An optional reason: absent, or one line of at most 500 characters.
fn optional_reason(reason: Option<&str>) -> Result<Option<String>, String> {
    reason
        .map(|r| line(r, 500).map(|()| r.trim().to_owned()))
        .transpose()
}
