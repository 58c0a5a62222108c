//! The SQL of `social_tasks` and `social_engagements` (the claims).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{AdminClaimView, ClaimCursor, ClaimStatus, ClaimView, TaskView};
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::{ClaimId, UserId};

const CLAIM_COLUMNS: &str =
    "e.id, e.task_id, e.status, e.reward_tokens, e.url, e.handle, e.created_at, e.reviewed_at,
     e.user_id, u.email, e.platform, e.action, t.title, e.reviewed_by";

const CLAIM_FROM: &str = "social_engagements e JOIN users u ON u.id = e.user_id
     LEFT JOIN social_tasks t ON t.id = e.task_id";

fn admin_claim_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminClaimView> {
    Ok(AdminClaimView {
        claim: ClaimView {
            id: r.get(0)?,
            task_id: r.get(1)?,
            status: r.get(2)?,
            reward_tokens: r.get(3)?,
            proof_url: r.get(4)?,
            handle: r.get(5)?,
            created_at: rfc3339(r.get(6)?),
            reviewed_at: r.get::<_, Option<Millis>>(7)?.map(rfc3339),
        },
        user_id: r.get(8)?,
        email: r.get(9)?,
        platform: r.get(10)?,
        action: r.get(11)?,
        task_title: r.get(12)?,
        reviewed_by: r.get(13)?,
        created_ms: r.get(6)?,
    })
}

pub fn find_claim(conn: &Connection, id: &ClaimId) -> rusqlite::Result<Option<AdminClaimView>> {
    conn.query_row(
        &format!("SELECT {CLAIM_COLUMNS} FROM {CLAIM_FROM} WHERE e.id = ?1"),
        [id],
        admin_claim_from_row,
    )
    .optional()
}

/// One page of claims, newest first, of one status or all, after `cursor`.
pub fn page_claims(
    conn: &Connection,
    status: Option<ClaimStatus>,
    cursor: Option<&ClaimCursor>,
    limit: u32,
) -> rusqlite::Result<Vec<AdminClaimView>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CLAIM_COLUMNS} FROM {CLAIM_FROM}
         WHERE (?1 IS NULL OR e.status = ?1)
           AND (?2 IS NULL OR e.created_at < ?2 OR (e.created_at = ?2 AND e.id < ?3))
         ORDER BY e.created_at DESC, e.id DESC LIMIT ?4"
    ))?;
    let (before_time, before_id) = cursor.map(|c| (c.created_ms, &c.id)).unzip();
    stmt.query_map(
        params![status, before_time, before_id, limit],
        admin_claim_from_row,
    )?
    .collect()
}

/// The active tasks in display order, with the caller's state for each: that of their
/// newest claim (a rejected one may be followed by a new claim).
pub fn tasks_for(conn: &Connection, user_id: &UserId) -> rusqlite::Result<Vec<TaskView>> {
    let mut stmt = conn.prepare(
        "SELECT t.id, t.platform, t.action, t.title, t.description, t.reward_tokens,
                t.auto_approve, t.reward_expires_days, e.status, e.id
         FROM social_tasks t
         LEFT JOIN social_engagements e ON e.id = (
             SELECT id FROM social_engagements
             WHERE task_id = t.id AND user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 1)
         WHERE t.active = 1 ORDER BY t.sort_order, t.id",
    )?;
    stmt.query_map([user_id], |r| {
        let state: Option<ClaimStatus> = r.get(8)?;
        Ok(TaskView {
            id: r.get(0)?,
            platform: r.get(1)?,
            action: r.get(2)?,
            title: r.get(3)?,
            description: r.get(4)?,
            reward_tokens: r.get(5)?,
            auto_approve: r.get::<_, i64>(6)? == 1,
            reward_expires_days: r.get(7)?,
            state: state.map_or_else(|| "available".to_owned(), |s| s.to_string()),
            claim_id: r.get(9)?,
        })
    })?
    .collect()
}

/// A task on offer, as a claim needs it.
pub struct Task {
    pub platform: String,
    pub action: String,
    pub title: String,
    pub reward_tokens: i64,
    pub auto_approve: bool,
    pub reward_expires_days: Option<i64>,
}

pub fn active_task(tx: &Transaction<'_>, task_id: &str) -> rusqlite::Result<Option<Task>> {
    tx.query_row(
        "SELECT platform, action, title, reward_tokens, auto_approve, reward_expires_days
         FROM social_tasks WHERE id = ?1 AND active = 1",
        [task_id],
        |r| {
            Ok(Task {
                platform: r.get(0)?,
                action: r.get(1)?,
                title: r.get(2)?,
                reward_tokens: r.get(3)?,
                auto_approve: r.get::<_, i64>(4)? == 1,
                reward_expires_days: r.get(5)?,
            })
        },
    )
    .optional()
}

/// A claim to record.
pub struct NewClaim<'a> {
    pub user_id: &'a UserId,
    pub task_id: &'a str,
    pub proof_url: &'a str,
    pub handle: Option<&'a str>,
    /// The client address it came from, as per-IP limits key it (`ClientInfo::ip_key`).
    pub client_ip: &'a str,
}

/// Records a claim on `task` as `status`; fails on a uniqueness rule (one claim per task
/// and user, one account per handle and task).
pub fn insert_claim(
    tx: &Transaction<'_>,
    id: &ClaimId,
    claim: &NewClaim<'_>,
    task: &Task,
    status: ClaimStatus,
    now: Millis,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO social_engagements
            (id, user_id, task_id, platform, action, url, handle, reward_tokens, status, created_at, reviewed_at, client_ip)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            id,
            claim.user_id,
            claim.task_id,
            task.platform,
            task.action,
            claim.proof_url,
            claim.handle,
            task.reward_tokens,
            status,
            now,
            task.auto_approve.then_some(now),
            claim.client_ip
        ],
    )
}

/// Whether the user has a claim on this task (or its platform and action) that was not
/// rejected: a rejected claim does not block a new one.
pub fn has_claimed(
    tx: &Transaction<'_>,
    claim: &NewClaim<'_>,
    task: &Task,
) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM social_engagements
                        WHERE user_id = ?1 AND (task_id = ?2 OR (platform = ?3 AND action = ?4))
                          AND status != ?5)",
        params![
            claim.user_id,
            claim.task_id,
            task.platform,
            task.action,
            ClaimStatus::Rejected
        ],
        |r| r.get(0),
    )
}

/// How many claims (rejected ones included) the user made on this task (or its platform
/// and action).
pub fn claims_made(
    tx: &Transaction<'_>,
    claim: &NewClaim<'_>,
    task: &Task,
) -> rusqlite::Result<i64> {
    tx.query_row(
        "SELECT COUNT(*) FROM social_engagements
         WHERE user_id = ?1 AND (task_id = ?2 OR (platform = ?3 AND action = ?4))",
        params![claim.user_id, claim.task_id, task.platform, task.action],
        |r| r.get(0),
    )
}

/// Whose claims a daily cap counts.
pub enum Claimant<'a> {
    /// One account's.
    User(&'a UserId),
    /// Every account's from one client address.
    Address(&'a str),
}

/// The pending and approved rewards `claimant` claimed in `[from, to)`.
pub fn rewards_claimed(
    tx: &Transaction<'_>,
    claimant: Claimant<'_>,
    from: Millis,
    to: Millis,
) -> rusqlite::Result<i64> {
    let (column, key) = match claimant {
        Claimant::User(id) => ("user_id", id.as_str()),
        Claimant::Address(ip) => ("client_ip", ip),
    };
    tx.query_row(
        &format!(
            "SELECT COALESCE(SUM(reward_tokens), 0) FROM social_engagements
             WHERE {column} = ?1 AND status IN (?4, ?5) AND created_at >= ?2 AND created_at < ?3"
        ),
        params![key, from, to, ClaimStatus::Pending, ClaimStatus::Approved],
        |r| r.get(0),
    )
}

/// A claim as a review needs it.
pub struct UnderReview {
    pub user_id: UserId,
    pub status: ClaimStatus,
    pub reward: i64,
    pub expires_days: Option<i64>,
    /// The task's title, or its platform and action once the task is gone.
    pub title: String,
}

pub fn claim_for_review(
    tx: &Transaction<'_>,
    id: &ClaimId,
) -> rusqlite::Result<Option<UnderReview>> {
    tx.query_row(
        "SELECT e.user_id, e.status, e.reward_tokens, t.reward_expires_days,
                COALESCE(t.title, e.platform || ' ' || e.action)
         FROM social_engagements e LEFT JOIN social_tasks t ON t.id = e.task_id
         WHERE e.id = ?1",
        [id],
        |r| {
            Ok(UnderReview {
                user_id: r.get(0)?,
                status: r.get(1)?,
                reward: r.get(2)?,
                expires_days: r.get(3)?,
                title: r.get(4)?,
            })
        },
    )
    .optional()
}

/// Settles a pending claim as `status`, reviewed by `admin_id` at `now`.
pub fn set_reviewed(
    tx: &Transaction<'_>,
    id: &ClaimId,
    status: ClaimStatus,
    admin_id: &UserId,
    now: Millis,
) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE social_engagements SET status = ?2, reviewed_at = ?3, reviewed_by = ?4
         WHERE id = ?1 AND status = ?5",
        params![id, status, now, admin_id, ClaimStatus::Pending],
    )
}

/// A task of the seeded catalogue.
pub struct NewTask {
    pub id: &'static str,
    pub platform: &'static str,
    pub action: &'static str,
    pub title: &'static str,
    pub reward: i64,
    pub auto_approve: bool,
    pub reward_expires_days: Option<i64>,
}

/// Adds `task` at `sort_order` unless a task with its id exists; 1 if added, else 0.
pub fn insert_task(
    tx: &Transaction<'_>,
    task: &NewTask,
    sort_order: i64,
    now: Millis,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO social_tasks (id, platform, action, title, reward_tokens, auto_approve, reward_expires_days, sort_order, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
        params![task.id, task.platform, task.action, task.title, task.reward, task.auto_approve, task.reward_expires_days, sort_order, now],
    )
}
