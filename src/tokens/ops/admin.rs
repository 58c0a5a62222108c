//! What an admin does to one user's tokens (the console and `/api/admin`): read the
//! balance, ledger, lots and holds; adjust down; force-release a hold. Grants are
//! [`super::grant_by_admin`]. Every change keeps the ledger's invariants (`ledger::check`).

use rusqlite::{Connection, Transaction, params};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::{HoldId, UserId};
use crate::tokens::ledger::{self, HoldView, LedgerError, TransactionView};

const WEEK_MS: Millis = 7 * 24 * 3600 * 1000;

/// A user's tokens at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenSummary {
    /// Available plus held.
    pub balance: i64,
    /// Reserved by open holds.
    pub held: i64,
    /// Spendable now.
    pub available: i64,
    /// Of the available tokens, those that expire within 7 days.
    pub expiring_7d: i64,
}

pub fn summary(conn: &Connection, user_id: &UserId, now: Millis) -> rusqlite::Result<TokenSummary> {
    let view = ledger::balance(conn, user_id, now)?;
    let expiring_7d: i64 = conn.query_row(
        "SELECT COALESCE(SUM(remaining), 0) FROM token_lots
         WHERE user_id = ?1 AND remaining > 0 AND expires_at > ?2 AND expires_at <= ?3",
        params![user_id, now, now + WEEK_MS],
        |r| r.get(0),
    )?;
    Ok(TokenSummary {
        balance: view.balance + view.held,
        held: view.held,
        available: view.balance,
        expiring_7d,
    })
}

/// One lot of tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct LotView {
    pub id: i64,
    /// subscription, purchase, reward, admin or refund.
    pub source: String,
    pub amount: i64,
    pub remaining: i64,
    pub expires_at: Option<String>,
    pub created_at: String,
}

/// The user's lots, newest first (at most 200).
pub fn lots(conn: &Connection, user_id: &UserId) -> rusqlite::Result<Vec<LotView>> {
    let mut stmt = conn.prepare(
        "SELECT id, source, amount, remaining, expires_at, created_at FROM token_lots
         WHERE user_id = ?1 ORDER BY id DESC LIMIT 200",
    )?;
    stmt.query_map([user_id], |r| {
        Ok(LotView {
            id: r.get(0)?,
            source: r.get(1)?,
            amount: r.get(2)?,
            remaining: r.get(3)?,
            expires_at: r.get::<_, Option<Millis>>(4)?.map(rfc3339),
            created_at: rfc3339(r.get(5)?),
        })
    })?
    .collect()
}

/// Why an adjustment was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdjustError {
    #[error("the user has only {available} tokens available; an adjustment never goes below zero")]
    BelowZero { available: i64 },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<rusqlite::Error> for AdjustError {
    fn from(e: rusqlite::Error) -> Self {
        AdjustError::Ledger(e.into())
    }
}

/// Takes `amount` available tokens away from the user, never below zero (a clawback row
/// with its own reference); audited. The new available balance and the ledger row.
pub fn adjust_down(
    tx: &Transaction<'_>,
    user_id: &UserId,
    amount: i64,
    reason: &str,
    actor: &Actor,
    now: Millis,
) -> Result<(i64, TransactionView), AdjustError> {
    let available = ledger::balance(tx, user_id, now)?.balance;
    if amount > available {
        return Err(AdjustError::BelowZero { available });
    }
    let reference = format!("admin-adjust:{}", uuid::Uuid::now_v7());
    let taken = ledger::claw_back(tx, user_id, None, &reference, amount, reason, now)?;
    if taken.taken != amount {
        return Err(
            LedgerError::Corrupt("an adjustment took less than was available".into()).into(),
        );
    }
    let entry = ledger::transactions(tx, user_id, None, None, 1)?
        .pop()
        .ok_or_else(|| LedgerError::Corrupt("the adjustment row is missing".into()))?;
    let event = Event::new("tokens.admin_adjust")
        .target("user", user_id)
        .details(json!({ "amount": amount, "reason": reason, "transaction": entry.id }));
    audit::record(tx, now, actor, event)?;
    Ok((ledger::available(tx, user_id)?, entry))
}

/// Releases an open hold of the user: every reserved token returns to its lots; audited.
/// The hold as it is now and the available balance.
pub fn force_release(
    tx: &Transaction<'_>,
    user_id: &UserId,
    hold_id: &HoldId,
    reason: &str,
    actor: &Actor,
    now: Millis,
) -> Result<(HoldView, i64), LedgerError> {
    let hold = ledger::release_hold(tx, user_id, hold_id, now)?;
    let event = Event::new("tokens.admin_hold_release")
        .target("user", user_id)
        .details(json!({ "hold": hold.id, "amount": hold.amount, "reason": reason }));
    audit::record(tx, now, actor, event)?;
    Ok((hold, ledger::available(tx, user_id)?))
}
