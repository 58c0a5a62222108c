//! The consistency check: every user's cached figures against the ledger, lots and holds.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::kinds::{HoldStatus, TransactionKind};
use crate::platform::ids::UserId;

/// A user whose cached figures disagree with the ledger, lots or holds.
#[derive(Debug, Serialize)]
pub struct Mismatch {
    pub user_id: UserId,
    pub email: String,
    pub cached_balance: i64,
    pub ledger_sum: i64,
    pub lots_remaining: i64,
    pub cached_held: i64,
    pub open_holds: i64,
    pub last_balance_after: Option<i64>,
    pub cached_earned: i64,
    pub ledger_earned: i64,
    pub cached_spent: i64,
    pub ledger_spent: i64,
}

impl Mismatch {
    fn is_consistent(&self) -> bool {
        self.cached_balance == self.ledger_sum
            && self.ledger_sum == self.lots_remaining
            && self.cached_held == self.open_holds
            && self.last_balance_after.unwrap_or(0) == self.cached_balance
            && self.cached_earned == self.ledger_earned
            && self.cached_spent == self.ledger_spent
    }
}

/// Every user's cached figures beside what the ledger, lots and holds add up to.
const FIGURES: &str = "SELECT u.id, u.email, u.token_balance,
        (SELECT COALESCE(SUM(amount), 0) FROM token_transactions t WHERE t.user_id = u.id),
        (SELECT COALESCE(SUM(remaining), 0) FROM token_lots l WHERE l.user_id = u.id),
        u.held_tokens,
        (SELECT COALESCE(SUM(amount), 0) FROM token_holds h WHERE h.user_id = u.id AND h.status = ?1),
        (SELECT balance_after FROM token_transactions t WHERE t.user_id = u.id ORDER BY id DESC LIMIT 1),
        u.lifetime_earned,
        (SELECT COALESCE(SUM(amount), 0) FROM token_transactions t WHERE t.user_id = u.id AND t.kind = ?2),
        u.lifetime_spent,
        (SELECT COALESCE(-SUM(amount), 0) FROM token_transactions t WHERE t.user_id = u.id AND t.kind = ?3)
          + (SELECT COALESCE(SUM(captured), 0) FROM token_holds h WHERE h.user_id = u.id AND h.status = ?4)
    FROM users u ORDER BY u.id";

/// Verifies the money invariants for every user: how many users, and those out of step.
pub fn check(conn: &Connection) -> rusqlite::Result<(u64, Vec<Mismatch>)> {
    let mut stmt = conn.prepare(FIGURES)?;
    let mut users = 0;
    let mut mismatches = Vec::new();
    let mut rows = stmt.query(params![
        HoldStatus::Open,
        TransactionKind::Grant,
        TransactionKind::Spend,
        HoldStatus::Captured
    ])?;
    while let Some(r) = rows.next()? {
        users += 1;
        let m = Mismatch {
            user_id: r.get(0)?,
            email: r.get(1)?,
            cached_balance: r.get(2)?,
            ledger_sum: r.get(3)?,
            lots_remaining: r.get(4)?,
            cached_held: r.get(5)?,
            open_holds: r.get(6)?,
            last_balance_after: r.get(7)?,
            cached_earned: r.get(8)?,
            ledger_earned: r.get(9)?,
            cached_spent: r.get(10)?,
            ledger_spent: r.get(11)?,
        };
        if !m.is_consistent() {
            mismatches.push(m);
        }
    }
    Ok((users, mismatches))
}
