//! What an admin does to an account (the console and `/api/admin`): disable and enable,
//! change the role, unlock, mark verified, resend verification, send a password reset,
//! end sessions, reset two-factor sign-in. Each runs inside the caller's write transaction and audits itself.

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::json;

use crate::accounts::api::VERIFY_TOKEN_TTL_MS;
use crate::accounts::api::password_reset::RESET_TOKEN_TTL_MS;
use crate::accounts::emails;
use crate::accounts::mfa::ops as mfa_ops;
use crate::accounts::one_time::{self, Purpose};
use crate::accounts::store::{self, UserView};
use crate::auth::console;
use crate::auth::mfa::mfa_enabled;
use crate::auth::roles::{Role, UserStatus};
use crate::auth::sessions::{self, RevokeReason};
use crate::http::error::{ApiError, ApiResult};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::ids::{SessionId, UserId};
use crate::platform::mail;

/// The id of the account with this address (in any case or spacing), whatever its status.
pub fn id_by_email(conn: &rusqlite::Connection, email: &str) -> rusqlite::Result<Option<UserId>> {
    let email = crate::accounts::validate::normalize_email(email);
    Ok(store::find_credentials(conn, &email)?.map(|c| c.id))
}

fn user(tx: &Transaction<'_>, id: &UserId) -> ApiResult<UserView> {
    store::find_user(tx, id)?.ok_or(ApiError::NotFound)
}

fn record(
    tx: &Transaction<'_>,
    actor: &Actor,
    now: Millis,
    action: &str,
    id: &UserId,
    details: serde_json::Value,
) -> ApiResult<()> {
    audit::record(
        tx,
        now,
        actor,
        Event::new(action).target("user", id).details(details),
    )?;
    Ok(())
}

/// Active admins other than `id`.
fn other_active_admins(tx: &Transaction<'_>, id: &UserId) -> rusqlite::Result<i64> {
    tx.query_row(
        "SELECT COUNT(*) FROM users WHERE role = ?1 AND status = ?2 AND id <> ?3",
        params![Role::Admin, UserStatus::Active, id],
        |r| r.get(0),
    )
}

/// The 409 of acting on oneself or the last admin, if `target` is either.
fn guard_admins(
    tx: &Transaction<'_>,
    actor: &UserId,
    target: &UserView,
    what: &str,
) -> ApiResult<()> {
    if &target.id == actor {
        return Err(ApiError::Conflict(format!(
            "you cannot {what} your own account"
        )));
    }
    if target.role == Role::Admin
        && target.status == UserStatus::Active
        && other_active_admins(tx, &target.id)? == 0
    {
        return Err(ApiError::Conflict(format!(
            "you cannot {what} the last admin"
        )));
    }
    Ok(())
}

/// Disables an account: every API and console session ends at once. Never oneself nor
/// the last active admin (409).
pub fn disable(
    tx: &Transaction<'_>,
    id: &UserId,
    reason: &str,
    actor_id: &UserId,
    actor: &Actor,
    now: Millis,
) -> ApiResult<()> {
    let target = user(tx, id)?;
    if target.status == UserStatus::Disabled {
        return Err(ApiError::Conflict("the account is already disabled".into()));
    }
    guard_admins(tx, actor_id, &target, "disable")?;
    tx.execute(
        "UPDATE users SET status = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, UserStatus::Disabled, now],
    )?;
    let api = sessions::revoke_all(tx, id, None, RevokeReason::AccountDisabled, now)?;
    let consoles = console::revoke_all(tx, id, "account_disabled", now)?;
    let details =
        json!({ "reason": reason, "sessions_revoked": api, "console_sessions_revoked": consoles });
    record(tx, actor, now, "admin.user_disabled", id, details)
}

/// Enables a disabled account (its sessions stay ended).
pub fn enable(
    tx: &Transaction<'_>,
    id: &UserId,
    reason: Option<&str>,
    actor: &Actor,
    now: Millis,
) -> ApiResult<()> {
    let target = user(tx, id)?;
    if target.status == UserStatus::Active {
        return Err(ApiError::Conflict("the account is already active".into()));
    }
    tx.execute(
        "UPDATE users SET status = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, UserStatus::Active, now],
    )?;
    record(
        tx,
        actor,
        now,
        "admin.user_enabled",
        id,
        json!({ "reason": reason }),
    )
}

/// Gives an account `role`. Never one's own, never the last active admin's (409); a
/// demotion ends the account's console sessions.
pub fn set_role(
    tx: &Transaction<'_>,
    id: &UserId,
    role: Role,
    actor_id: &UserId,
    actor: &Actor,
    now: Millis,
) -> ApiResult<()> {
    let target = user(tx, id)?;
    guard_admins(tx, actor_id, &target, "change the role of")?;
    if target.role == role {
        return Ok(());
    }
    tx.execute(
        "UPDATE users SET role = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, role, now],
    )?;
    if role != Role::Admin {
        console::revoke_all(tx, id, "demoted", now)?;
    }
    record(
        tx,
        actor,
        now,
        "admin.role_changed",
        id,
        json!({ "from": target.role, "to": role }),
    )
}

/// Clears the failed-login counter: the account may sign in again at once.
pub fn unlock(tx: &Transaction<'_>, id: &UserId, actor: &Actor, now: Millis) -> ApiResult<()> {
    user(tx, id)?;
    store::clear_login_failures(tx, id)?;
    record(tx, actor, now, "admin.user_unlocked", id, json!({}))
}

/// Marks the email address verified (unused verification links stop working).
pub fn verify_email(
    tx: &Transaction<'_>,
    id: &UserId,
    actor: &Actor,
    now: Millis,
) -> ApiResult<()> {
    let target = user(tx, id)?;
    store::mark_email_verified(tx, id, now)?;
    one_time::expire_all(tx, id, Purpose::VerifyEmail, now)?;
    record(
        tx,
        actor,
        now,
        "admin.email_verified",
        id,
        json!({ "already": target.email_verified }),
    )
}

/// Queues a new verification email; 409 when the address is verified already.
pub fn resend_verification(
    tx: &Transaction<'_>,
    id: &UserId,
    base_url: &str,
    actor: &Actor,
    now: Millis,
) -> ApiResult<()> {
    let target = user(tx, id)?;
    if target.email_verified {
        return Err(ApiError::Conflict(
            "the email address is already verified".into(),
        ));
    }
    let token = one_time::issue(tx, id, Purpose::VerifyEmail, now, VERIFY_TOKEN_TTL_MS)?;
    mail::enqueue(
        tx,
        &emails::verification(base_url, &target.email, &token),
        now,
    )?;
    record(tx, actor, now, "admin.verification_resent", id, json!({}))
}

/// Queues a password-reset email to the account's owner; no password is ever set here.
pub fn send_password_reset(
    tx: &Transaction<'_>,
    id: &UserId,
    base_url: &str,
    actor: &Actor,
    now: Millis,
) -> ApiResult<()> {
    let target = user(tx, id)?;
    if target.status != UserStatus::Active {
        return Err(ApiError::Conflict("the account is disabled".into()));
    }
    let token = one_time::issue(tx, id, Purpose::ResetPassword, now, RESET_TOKEN_TTL_MS)?;
    mail::enqueue(
        tx,
        &emails::password_reset(base_url, &target.email, &token),
        now,
    )?;
    record(tx, actor, now, "admin.password_reset_sent", id, json!({}))
}

/// Ends one API session of the account; 404 when it is not one of its live sessions.
pub fn revoke_session(
    tx: &Transaction<'_>,
    id: &UserId,
    session: &SessionId,
    actor: &Actor,
    now: Millis,
) -> ApiResult<()> {
    let live: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM sessions WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL AND expires_at > ?3",
            params![session, id, now],
            |r| r.get(0),
        )
        .optional()?;
    if live.is_none() || !sessions::revoke(tx, id, session, RevokeReason::RevokedByAdmin, now)? {
        return Err(ApiError::NotFound);
    }
    record(
        tx,
        actor,
        now,
        "admin.session_revoked",
        id,
        json!({ "session": session }),
    )
}

/// Ends every API session of the account; how many.
pub fn revoke_all_sessions(
    tx: &Transaction<'_>,
    id: &UserId,
    actor: &Actor,
    now: Millis,
) -> ApiResult<usize> {
    user(tx, id)?;
    let count = sessions::revoke_all(tx, id, None, RevokeReason::RevokedByAdmin, now)?;
    record(
        tx,
        actor,
        now,
        "admin.sessions_revoked",
        id,
        json!({ "sessions_revoked": count }),
    )?;
    Ok(count)
}

/// Turns off another account's two-factor sign-in (its owner lost the authenticator and
/// the recovery codes): the operation of `users mfa-reset`, audited as `auth.mfa_reset`
/// and told to the owner by email; sessions stay as they are. 409 for one's own account
/// (the owner turns it off with a code instead) and for an account without it on.
pub fn reset_mfa(
    tx: &Transaction<'_>,
    id: &UserId,
    base_url: &str,
    actor_id: &UserId,
    actor: &Actor,
    now: Millis,
) -> ApiResult<()> {
    let account = store::credentials_by_id(tx, id)?.ok_or(ApiError::NotFound)?;
    if id == actor_id {
        return Err(ApiError::Conflict(
            "you cannot reset your own two-factor authentication: turn it off with your password and a code (POST /api/auth/mfa/totp/disable)".into(),
        ));
    }
    if !mfa_enabled(tx, id)? || !mfa_ops::reset(tx, base_url, &account, actor, now)? {
        return Err(ApiError::Conflict(
            "the account has no two-factor authentication".into(),
        ));
    }
    Ok(())
}
