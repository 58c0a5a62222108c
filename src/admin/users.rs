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

/// A user row with the lockout, the plan and the avatar.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserRow,
    pub lockout: Lockout,
    pub plan: Option<PlanSummary>,
    pub avatar_url: Option<String>,
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
    Ok(Some(UserDetail {
        user,
        lockout: Lockout {
            failed_attempts,
            locked_until: locked_until.filter(|t| *t > now).map(rfc3339),
        },
        plan,
        avatar_url,
    }))
}
