//! Token analytics: tokens spent and jobs run per day or per feature, tokens earned per source.

use rusqlite::{Connection, params};
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::UserId;
use crate::tokens::ledger::TransactionKind;

/// Spending in one group: a UTC day (`YYYY-MM-DD`) or a feature.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpentGroup {
    pub key: String,
    pub tokens: i64,
    /// How many spends (jobs) made up `tokens`.
    pub jobs: i64,
}

/// Tokens granted from one source (`subscription`, `purchase`, `reward`, `admin`, `refund`).
#[derive(Debug, Serialize, ToSchema)]
pub struct EarnedGroup {
    pub source: String,
    pub tokens: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsReport {
    /// Start of the range (inclusive), RFC 3339.
    pub from: String,
    /// End of the range (exclusive), RFC 3339.
    pub to: String,
    /// `day` or `feature`.
    pub group_by: String,
    /// By day: oldest first, days without spending left out. By feature: most tokens first.
    pub spent: Vec<SpentGroup>,
    /// Most tokens first.
    pub earned: Vec<EarnedGroup>,
    pub total_spent: i64,
    pub total_earned: i64,
}

/// How spending is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum GroupBy {
    Day,
    Feature,
}

/// The range `[from, to)` and grouping of a report.
#[derive(Debug, PartialEq, Eq)]
pub struct Query {
    pub from: Millis,
    pub to: Millis,
    pub group_by: GroupBy,
}

/// The report over `query`, for one user or (with `None`) for everyone.
pub fn report(
    conn: &Connection,
    user_id: Option<&UserId>,
    query: &Query,
) -> rusqlite::Result<AnalyticsReport> {
    // Two statement shapes rather than `?1 IS NULL OR user_id = ?1`, so each can use its index.
    let user_filter = if user_id.is_some() {
        "user_id = ?1"
    } else {
        "?1 IS NULL"
    };
    let (key, order) = match query.group_by {
        GroupBy::Day => (
            "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')",
            "key",
        ),
        GroupBy::Feature => ("COALESCE(feature, 'unknown')", "SUM(tokens_used) DESC, key"),
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {key} AS key, SUM(tokens_used), COUNT(*) FROM usage_analytics
         WHERE {user_filter} AND event = 'tokens_spent' AND created_at >= ?2 AND created_at < ?3
         GROUP BY key ORDER BY {order}"
    ))?;
    let spent = stmt
        .query_map(params![user_id, query.from, query.to], |r| {
            Ok(SpentGroup {
                key: r.get(0)?,
                tokens: r.get(1)?,
                jobs: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare(&format!(
        "SELECT COALESCE(source, 'unknown') AS source, SUM(amount) FROM token_transactions
         WHERE {user_filter} AND kind = ?4 AND created_at >= ?2 AND created_at < ?3
         GROUP BY source ORDER BY SUM(amount) DESC, source"
    ))?;
    let earned = stmt
        .query_map(
            params![user_id, query.from, query.to, TransactionKind::Grant],
            |r| {
                Ok(EarnedGroup {
                    source: r.get(0)?,
                    tokens: r.get(1)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(AnalyticsReport {
        from: rfc3339(query.from),
        to: rfc3339(query.to),
        group_by: <&str>::from(query.group_by).to_owned(),
        total_spent: spent.iter().map(|g| g.tokens).sum(),
        total_earned: earned.iter().map(|g| g.tokens).sum(),
        spent,
        earned,
    })
}
