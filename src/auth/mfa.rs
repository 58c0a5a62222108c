//! What the auth layer knows of two-factor sign-in: the factor a session was opened with,
//! and the rule that admins use the admin API only from a session opened with a second
//! factor (setting `mfa_required_for_admins`). Enrolment and the sign-in challenge are
//! in `accounts::mfa`.

use rocket::request::Request;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::AuthUser;
use crate::http::error::ApiError;
use crate::platform::db::Db;
use crate::platform::ids::{SessionId, UserId};

crate::stored_enum! {
    /// How a session's owner proved who they are (`sessions.factor`).
    pub enum Factor {
        /// The password alone (the account had no second factor).
        Password,
        /// The password and a TOTP code.
        Totp,
        /// The password and a single-use recovery code.
        RecoveryCode,
    }
}

/// Whether admins need a second factor for the admin API; managed as Rocket state.
#[derive(Debug, Clone, Copy)]
pub struct AdminMfaPolicy {
    pub required: bool,
}

/// What the problem says to an admin whose account has no second factor.
pub const ENROL_FIRST: &str =
    "enrol in two-factor authentication at /api/auth/mfa/totp/setup (or in the console)";
/// What it says when the account has one but this session was opened without it.
pub const LOG_IN_AGAIN: &str = "this session was opened without two-factor authentication; log in again with your authentication code";

/// Whether the account's TOTP enrolment is confirmed.
pub fn mfa_enabled(conn: &Connection, user_id: &UserId) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM user_mfa WHERE user_id = ?1 AND confirmed_at IS NOT NULL)",
        [user_id],
        |r| r.get(0),
    )
}

/// Records that the session's owner has just proved `factor` in it (enrolment confirms
/// a code inside the session that asked for it).
pub fn set_session_factor(
    tx: &Transaction<'_>,
    session_id: &SessionId,
    factor: Factor,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE sessions SET factor = ?2 WHERE id = ?1",
        params![session_id, factor],
    )?;
    Ok(())
}

/// `None` when the admin may go on; otherwise what to tell them.
fn admin_refusal(conn: &Connection, user: &AuthUser) -> rusqlite::Result<Option<&'static str>> {
    if !mfa_enabled(conn, &user.user_id)? {
        return Ok(Some(ENROL_FIRST));
    }
    let factor: Option<Factor> = conn
        .query_row(
            "SELECT factor FROM sessions WHERE id = ?1",
            [&user.session_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match factor {
        Some(Factor::Totp | Factor::RecoveryCode) => None,
        _ => Some(LOG_IN_AGAIN),
    })
}

/// The check the admin guard makes after the role: with the policy on, the account has
/// a confirmed second factor and this session was opened with it.
pub async fn admin_check(req: &Request<'_>, user: &AuthUser) -> Result<(), ApiError> {
    let policy = super::managed::<AdminMfaPolicy>(req)?;
    if !policy.required {
        return Ok(());
    }
    let user = user.clone();
    let refusal = super::managed::<Db>(req)?
        .read(move |c| Ok::<_, ApiError>(admin_refusal(c, &user)?))
        .await?;
    match refusal {
        None => Ok(()),
        Some(detail) => Err(ApiError::MfaRequired(detail)),
    }
}
