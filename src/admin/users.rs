//! One user in detail, as the console's user page shows them.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use utoipa::ToSchema;

use super::store::{UserRow, user_row_of};
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::UserId;

/// The failed-login counter behind the lockout.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lockout {
    pub failed_attempts: u32,
    /// While in the future, the account is locked.
    pub locked_until: Option<String>,
}

/// The user's newest subscription and its plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanSummary {
    pub plan_id: String,
    pub name: String,
    pub status: String,
}

/// The account's two-factor sign-in, as an operator may see it (never the secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaState {
    /// Two-factor sign-in is on: login takes a TOTP code (or a recovery code) too.
    pub enabled: bool,
    /// The second factor when on: `totp` (an authenticator app).
    pub factor: Option<String>,
    /// When the enrolment was confirmed.
    pub enrolled_at: Option<String>,
    /// Unused recovery codes, when on.
    pub recovery_codes_left: Option<i64>,
}

/// A user row with the lockout, the plan, the avatar and two-factor sign-in.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserRow,
    pub lockout: Lockout,
    pub plan: Option<PlanSummary>,
    pub avatar_url: Option<String>,
    /// Whether two-factor sign-in is on (the same as `mfa.enabled`).
    pub mfa_enabled: bool,
    pub mfa: MfaState,
}

/// The account's confirmed enrolment, if any, and its unused recovery codes.
fn mfa_state(conn: &Connection, id: &UserId) -> rusqlite::Result<MfaState> {
    let confirmed: Option<(Millis, i64)> = conn
        .query_row(
            "SELECT m.confirmed_at, (SELECT COUNT(*) FROM mfa_recovery_codes r
                 WHERE r.user_id = m.user_id AND r.used_at IS NULL)
             FROM user_mfa m WHERE m.user_id = ?1 AND m.confirmed_at IS NOT NULL",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(MfaState {
        enabled: confirmed.is_some(),
        factor: confirmed.map(|_| "totp".to_owned()),
        enrolled_at: confirmed.map(|(at, _)| rfc3339(at)),
        recovery_codes_left: confirmed.map(|(_, left)| left),
    })
}

/// The user `id` in detail, if there is one.
pub fn detail(conn: &Connection, id: &UserId, now: Millis) -> rusqlite::Result<Option<UserDetail>> {
    let Some(user) = user_row_of(conn, id, now)? else {
        return Ok(None);
    };
    let (failed_attempts, locked_until, avatar_url): (u32, Option<Millis>, Option<String>) = conn
        .query_row(
        "SELECT u.failed_login_count, u.locked_until, p.avatar_url
             FROM users u LEFT JOIN user_profiles p ON p.user_id = u.id WHERE u.id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let plan = conn
        .query_row(
            "SELECT s.plan_id, p.name, s.status FROM user_subscriptions s
             JOIN subscription_plans p ON p.id = s.plan_id
             WHERE s.user_id = ?1 ORDER BY s.created_at DESC, s.id DESC LIMIT 1",
            params![id],
            |r| {
                Ok(PlanSummary {
                    plan_id: r.get(0)?,
                    name: r.get(1)?,
                    status: r.get(2)?,
                })
            },
        )
        .optional()?;
    let mfa = mfa_state(conn, id)?;
    Ok(Some(UserDetail {
        user,
        lockout: Lockout {
            failed_attempts,
            locked_until: locked_until.filter(|t| *t > now).map(rfc3339),
        },
        plan,
        avatar_url,
        mfa_enabled: mfa.enabled,
        mfa,
    }))
}
