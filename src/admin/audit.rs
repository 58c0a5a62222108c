//! The audit log as the console browses it: filtered pages, one row, the chain's check.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::platform::clock::{Millis, rfc3339};

/// One audit row.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub action: String,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
}

/// One audit row with its links in the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditDetail {
    #[serde(flatten)]
    pub row: AuditRow,
    pub hash: String,
    pub prev_hash: String,
}

/// Which rows to browse; `None` does not filter.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub target: Option<String>,
    /// Rows by or about this user.
    pub user: Option<String>,
    /// An action prefix, e.g. `admin.` or `tokens.admin_grant`.
    pub action: Option<String>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
}

const COLUMNS: &str = "a.id, a.occurred_at, a.action, a.actor_user_id, u.email, a.target_type, a.target_id, a.ip, a.user_agent, a.details, a.hash, a.prev_hash";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    let details: String = r.get(9)?;
    Ok(AuditRow {
        id: r.get(0)?,
        at: rfc3339(r.get(1)?),
        action: r.get(2)?,
        actor_id: r.get(3)?,
        actor_email: r.get(4)?,
        target_type: r.get(5)?,
        target_id: r.get(6)?,
        ip: r.get(7)?,
        user_agent: r.get(8)?,
        details: serde_json::from_str(&details).unwrap_or(Value::Null),
    })
}

fn prefix_pattern(prefix: &str) -> String {
    let escaped = prefix
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("{escaped}%")
}

/// One page of rows, newest first.
pub fn page(
    conn: &Connection,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: u32,
) -> rusqlite::Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_logs a LEFT JOIN users u ON u.id = a.actor_user_id
         WHERE (?1 IS NULL OR a.actor_user_id = ?1) AND (?2 IS NULL OR a.target_id = ?2)
           AND (?3 IS NULL OR a.actor_user_id = ?3 OR a.target_id = ?3)
           AND (?4 IS NULL OR a.action LIKE ?4 ESCAPE '\\')
           AND (?5 IS NULL OR a.occurred_at >= ?5) AND (?6 IS NULL OR a.occurred_at < ?6)
           AND (?7 IS NULL OR a.id < ?7)
         ORDER BY a.id DESC LIMIT ?8"
    ))?;
    let action = filter.action.as_deref().map(prefix_pattern);
    stmt.query_map(
        params![
            filter.actor,
            filter.target,
            filter.user,
            action,
            filter.from,
            filter.to,
            before,
            limit
        ],
        row,
    )?
    .collect()
}

/// One row with its hashes.
pub fn one(conn: &Connection, id: i64) -> rusqlite::Result<Option<AuditDetail>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM audit_logs a LEFT JOIN users u ON u.id = a.actor_user_id WHERE a.id = ?1"),
        [id],
        |r| {
            Ok(AuditDetail {
                row: row(r)?,
                hash: r.get(10)?,
                prev_hash: r.get(11)?,
            })
        },
    )
    .optional()
}
