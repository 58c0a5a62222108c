//! The social-claims review queue as the console shows it: pending claims first, oldest
//! first, then the reviewed ones newest first; each with what the reviewer needs.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::pagination::Cursor;
use crate::platform::clock::{Millis, rfc3339};

const DAY_MS: Millis = 86_400_000;

/// A claim in the review queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueClaim {
    pub id: String,
    pub user_id: String,
    pub email: String,
    /// The task's id (its title in `task_title`, while the task exists).
    pub task: Option<String>,
    pub task_title: Option<String>,
    pub platform: String,
    pub action: String,
    pub handle: Option<String>,
    pub proof_url: Option<String>,
    pub reward: i64,
    /// pending, approved or rejected.
    pub status: String,
    /// Why it was rejected.
    pub reason: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<String>,
    pub created_at: String,
    /// Reward tokens this user claimed (pending or approved) today, UTC.
    pub claims_today: i64,
    /// `social_daily_reward_cap`: the most reward tokens a user may claim per UTC day.
    pub daily_cap: i64,
    #[serde(skip)]
    order: (i64, i64),
}

/// Where the queue continues: `<group>_<key>_<claim id>` of the previous page's last claim.
#[derive(Debug, Clone)]
pub struct QueueCursor {
    group: i64,
    key: i64,
    id: String,
}

impl Cursor for QueueCursor {
    fn parse(text: &str) -> Option<QueueCursor> {
        let mut parts = text.splitn(3, '_');
        let group = parts.next()?.parse().ok().filter(|g| *g == 0 || *g == 1)?;
        let key = parts.next()?.parse().ok()?;
        let id = parts.next()?;
        (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())).then(|| {
            QueueCursor {
                group,
                key,
                id: id.to_owned(),
            }
        })
    }
    fn render(&self) -> String {
        format!("{}_{}_{}", self.group, self.key, self.id)
    }
}

impl QueueClaim {
    pub fn cursor(&self) -> QueueCursor {
        QueueCursor {
            group: self.order.0,
            key: self.order.1,
            id: self.id.clone(),
        }
    }
}

const QUEUE: &str = "SELECT e.id, e.user_id, u.email, e.task_id, t.title, e.platform, e.action, e.handle,
        e.url, e.reward_tokens, e.status, e.review_reason, e.reviewed_by, e.reviewed_at, e.created_at,
        (SELECT COALESCE(SUM(o.reward_tokens), 0) FROM social_engagements o
          WHERE o.user_id = e.user_id AND o.status <> 'rejected' AND o.created_at >= ?1 AND o.created_at < ?1 + 86400000),
        (e.status <> 'pending') AS grp,
        CASE WHEN e.status = 'pending' THEN e.created_at ELSE -e.created_at END AS k
    FROM social_engagements e JOIN users u ON u.id = e.user_id
    LEFT JOIN social_tasks t ON t.id = e.task_id";

fn queue_claim(r: &rusqlite::Row<'_>, cap: i64) -> rusqlite::Result<QueueClaim> {
    Ok(QueueClaim {
        id: r.get(0)?,
        user_id: r.get(1)?,
        email: r.get(2)?,
        task: r.get(3)?,
        task_title: r.get(4)?,
        platform: r.get(5)?,
        action: r.get(6)?,
        handle: r.get(7)?,
        proof_url: r.get(8)?,
        reward: r.get(9)?,
        status: r.get(10)?,
        reason: r.get(11)?,
        reviewed_by: r.get(12)?,
        reviewed_at: r.get::<_, Option<Millis>>(13)?.map(rfc3339),
        created_at: rfc3339(r.get(14)?),
        claims_today: r.get(15)?,
        daily_cap: cap,
        order: (r.get(16)?, r.get(17)?),
    })
}

/// One page of the queue.
pub fn page(
    conn: &Connection,
    status: Option<&str>,
    after: Option<&QueueCursor>,
    limit: u32,
    now: Millis,
    cap: i64,
) -> rusqlite::Result<Vec<QueueClaim>> {
    let day = now.div_euclid(DAY_MS) * DAY_MS;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT * FROM ({QUEUE}) WHERE 1 = 1 AND (?2 IS NULL OR status = ?2)
           AND (?3 IS NULL OR (grp, k, id) > (?3, ?4, ?5))
         ORDER BY grp, k, id LIMIT ?6"
    ))?;
    let (g, k, id) = match after {
        Some(c) => (Some(c.group), Some(c.key), Some(c.id.as_str())),
        None => (None, None, None),
    };
    stmt.query_map(params![day, status, g, k, id, limit], |r| {
        queue_claim(r, cap)
    })?
    .collect()
}

/// One claim of the queue.
pub fn one(
    conn: &Connection,
    id: &str,
    now: Millis,
    cap: i64,
) -> rusqlite::Result<Option<QueueClaim>> {
    let day = now.div_euclid(DAY_MS) * DAY_MS;
    conn.query_row(&format!("{QUEUE} WHERE e.id = ?2"), params![day, id], |r| {
        queue_claim(r, cap)
    })
    .optional()
}

/// Keeps why an admin rejected a claim.
pub fn set_reason(tx: &rusqlite::Transaction<'_>, id: &str, reason: &str) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE social_engagements SET review_reason = ?2 WHERE id = ?1",
        params![id, reason],
    )?;
    Ok(())
}
