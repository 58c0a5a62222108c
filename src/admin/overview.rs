//! The figures of the console's overview: what needs attention, and how the service is doing.

use rusqlite::{Connection, params};
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::clock::{Millis, rfc3339};

const DAY_MS: Millis = 86_400_000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerCheck {
    /// When the check ran: every `ledger_check_interval_secs`, and whenever an admin runs
    /// it (`GET checks/ledger`).
    pub at: String,
    pub clean: bool,
}

/// The newest ledger check's outcome, kept for the overview: the check reads every
/// ledger row, too slow to run on each visit once the ledger is large.
#[derive(Default, Clone)]
pub struct LastLedgerCheck(std::sync::Arc<std::sync::Mutex<Option<LedgerCheck>>>);

impl LastLedgerCheck {
    pub fn get(&self) -> Option<LedgerCheck> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn record(&self, at: Millis, clean: bool) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(LedgerCheck {
            at: rfc3339(at),
            clean,
        });
    }
}

/// What needs an operator's attention.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alerts {
    pub pending_claims: i64,
    pub failed_webhooks: i64,
    pub failed_emails: i64,
    /// Tokens refunds could not claw back, in all.
    pub shortfall_total: i64,
    /// Open holds past their expiry, not yet swept.
    pub holds_past_ttl: i64,
    pub last_ledger_check: Option<LedgerCheck>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Kpis {
    pub users: i64,
    pub users_new_7d: i64,
    /// Spendable tokens of every user.
    pub tokens_outstanding: i64,
    pub tokens_held: i64,
    pub tokens_expiring_7d: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DaySpend {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub tokens: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub alerts: Alerts,
    pub kpis: Kpis,
    /// The last 30 UTC days, oldest first, today included.
    pub spend_per_day: Vec<DaySpend>,
}

fn count(conn: &Connection, sql: &str, now: Millis) -> rusqlite::Result<i64> {
    let mut stmt = conn.prepare_cached(sql)?;
    let wanted = stmt.parameter_count();
    match wanted {
        0 => stmt.query_row([], |r| r.get(0)),
        _ => stmt.query_row([now], |r| r.get(0)),
    }
}

fn alerts(
    conn: &Connection,
    now: Millis,
    last_ledger_check: Option<LedgerCheck>,
) -> rusqlite::Result<Alerts> {
    Ok(Alerts {
        pending_claims: count(
            conn,
            "SELECT COUNT(*) FROM social_engagements WHERE status = 'pending'",
            now,
        )?,
        failed_webhooks: count(
            conn,
            "SELECT COUNT(*) FROM webhook_events WHERE status = 'failed'",
            now,
        )?,
        failed_emails: count(
            conn,
            "SELECT COUNT(*) FROM email_outbox WHERE status = 'failed'",
            now,
        )?,
        shortfall_total: count(
            conn,
            "SELECT COALESCE(SUM(amount), 0) FROM token_shortfalls",
            now,
        )?,
        holds_past_ttl: count(
            conn,
            "SELECT COUNT(*) FROM token_holds WHERE status = 'open' AND expires_at <= ?1",
            now,
        )?,
        last_ledger_check,
    })
}

fn kpis(conn: &Connection, now: Millis) -> rusqlite::Result<Kpis> {
    let week_ago = now - 7 * DAY_MS;
    Ok(Kpis {
        users: count(conn, "SELECT COUNT(*) FROM users", now)?,
        users_new_7d: conn.query_row("SELECT COUNT(*) FROM users WHERE created_at >= ?1", [week_ago], |r| r.get(0))?,
        tokens_outstanding: count(conn, "SELECT COALESCE(SUM(token_balance), 0) FROM users", now)?,
        tokens_held: count(conn, "SELECT COALESCE(SUM(held_tokens), 0) FROM users", now)?,
        tokens_expiring_7d: conn.query_row(
            "SELECT COALESCE(SUM(remaining), 0) FROM token_lots WHERE remaining > 0 AND expires_at > ?1 AND expires_at <= ?2",
            params![now, now + 7 * DAY_MS],
            |r| r.get(0),
        )?,
    })
}

/// Tokens spent per UTC day (spends and captured holds), the last 30 days with zeros.
/// The daily totals are kept by triggers as spends and captures are written (V12).
fn spend_per_day(conn: &Connection, now: Millis) -> rusqlite::Result<Vec<DaySpend>> {
    let today = now.div_euclid(DAY_MS);
    let first = (today - 29) * DAY_MS;
    let mut totals = vec![0i64; 30];
    let mut stmt = conn.prepare_cached("SELECT day, tokens FROM spend_per_day WHERE day >= ?1")?;
    let rows = stmt.query_map([today - 29], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (day, tokens) = row?;
        if let Some(slot) = usize::try_from(day - (today - 29))
            .ok()
            .and_then(|i| totals.get_mut(i))
        {
            *slot += tokens;
        }
    }
    Ok(totals
        .into_iter()
        .enumerate()
        .map(|(i, tokens)| DaySpend {
            day: rfc3339(first + i as i64 * DAY_MS)[..10].to_owned(),
            tokens,
        })
        .collect())
}

/// The overview, with `last_ledger_check` the newest check's outcome (`None`: none ran).
pub fn overview(
    conn: &Connection,
    now: Millis,
    last_ledger_check: Option<LedgerCheck>,
) -> rusqlite::Result<Overview> {
    Ok(Overview {
        alerts: alerts(conn, now, last_ledger_check)?,
        kpis: kpis(conn, now)?,
        spend_per_day: spend_per_day(conn, now)?,
    })
}

/// Work waiting for the background workers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Backlogs {
    pub webhooks_pending: i64,
    pub webhooks_failed: i64,
    pub outbox_pending: i64,
    pub outbox_failed: i64,
}

pub fn backlogs(conn: &Connection) -> rusqlite::Result<Backlogs> {
    let n = |sql| count(conn, sql, 0);
    Ok(Backlogs {
        webhooks_pending: n(
            "SELECT COUNT(*) FROM webhook_events WHERE status IN ('pending', 'processing')",
        )?,
        webhooks_failed: n("SELECT COUNT(*) FROM webhook_events WHERE status = 'failed'")?,
        outbox_pending: n("SELECT COUNT(*) FROM email_outbox WHERE status = 'pending'")?,
        outbox_failed: n("SELECT COUNT(*) FROM email_outbox WHERE status = 'failed'")?,
    })
}
