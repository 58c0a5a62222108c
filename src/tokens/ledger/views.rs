//! What a user reads of the ledger: the balance as of now and the rows, newest first.

use rusqlite::{Connection, params};
use serde::Serialize;
use utoipa::ToSchema;

use super::entry::{TRANSACTION_COLUMNS, TransactionView, transaction_from_row};
use super::kinds::TransactionKind;
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::UserId;

#[derive(Debug, Serialize, ToSchema)]
pub struct Expiring {
    pub amount: i64,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    /// Tokens available to spend now.
    pub balance: i64,
    /// Tokens reserved by open holds.
    pub held: i64,
    /// Tokens that will expire, soonest first.
    pub expiring: Vec<Expiring>,
    pub lifetime_earned: i64,
    pub lifetime_spent: i64,
}

/// `users.token_balance`: the spendable balance the ledger keeps in step, lots past
/// their expiry included until they are expired.
pub fn available(conn: &Connection, user_id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT token_balance FROM users WHERE id = ?1")?
        .query_row([user_id], |r| r.get(0))
}

/// The balance as of `now`: lots past their expiry never count, even before the worker
/// runs. Its cost does not grow with the history: totals are kept on the user's row.
pub fn balance(conn: &Connection, user_id: &UserId, now: Millis) -> rusqlite::Result<BalanceView> {
    let (cached, held, overdue, earned, spent): (i64, i64, i64, i64, i64) = conn
        .prepare_cached(
            "SELECT token_balance, held_tokens,
                    (SELECT COALESCE(SUM(remaining), 0) FROM token_lots
                     WHERE user_id = ?1 AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?2),
                    lifetime_earned, lifetime_spent
             FROM users WHERE id = ?1",
        )?
        .query_row(params![user_id, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
    let expiring = conn
        .prepare_cached(
            "SELECT SUM(remaining), expires_at FROM token_lots
             WHERE user_id = ?1 AND remaining > 0 AND expires_at > ?2
             GROUP BY expires_at ORDER BY expires_at LIMIT 50",
        )?
        .query_map(params![user_id, now], |r| {
            Ok(Expiring {
                amount: r.get(0)?,
                expires_at: rfc3339(r.get(1)?),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(BalanceView {
        balance: cached - overdue,
        held,
        expiring,
        lifetime_earned: earned,
        lifetime_spent: spent,
    })
}

/// One page of a user's ledger, newest first.
pub fn transactions(
    conn: &Connection,
    user_id: &UserId,
    kind: Option<TransactionKind>,
    before_id: Option<i64>,
    limit: u32,
) -> rusqlite::Result<Vec<TransactionView>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TRANSACTION_COLUMNS} FROM token_transactions
         WHERE user_id = ?1 AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4"
    ))?;
    stmt.query_map(
        params![user_id, kind, before_id, limit],
        transaction_from_row,
    )?
    .collect()
}
