//! Spends: tokens out of the balance, drawn from lots soonest-expiring first.

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;

use super::entry::{Entry, TransactionView, append};
use super::expiry::expire_due;
use super::kinds::TransactionKind;
use super::views::available;
use super::{LedgerError, positive_amount};
use crate::platform::clock::Millis;
use crate::platform::ids::UserId;
use crate::platform::{db, metrics};

/// A spend to make.
pub struct Debit<'a> {
    pub user_id: &'a UserId,
    pub amount: i64,
    pub feature: &'a str,
    pub description: Option<&'a str>,
    pub metadata: Option<&'a Value>,
}

/// Takes tokens out through a guarded statement, soonest-expiring lots first.
pub fn debit(
    tx: &Transaction<'_>,
    debit: &Debit<'_>,
    now: Millis,
) -> Result<TransactionView, LedgerError> {
    positive_amount(debit.amount)?;
    expire_due(tx, Some(debit.user_id.as_str()), now)?;
    take_from_balance(tx, debit.user_id, debit.amount, Taken::Spent)?;
    let lots = draw_lots(tx, debit.user_id, debit.amount, now)?;
    let (feature, amount) = (metrics::interned(debit.feature), debit.amount);
    db::after_commit(move || metrics::tokens_spent(feature, amount));
    append(
        tx,
        debit.user_id,
        &Entry {
            description: debit.description,
            feature: Some(debit.feature),
            metadata: debit.metadata,
            ..Entry::new(TransactionKind::Spend, -debit.amount, &lots)
        },
        now,
    )
}

/// Where tokens taken from the balance go, for the running totals on `users`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Taken {
    /// Spent: counted in `lifetime_spent`.
    Spent,
    /// Reserved by a hold: counted in `held_tokens` until it settles.
    Held,
    /// Taken back (a clawback): in neither.
    Removed,
}

/// `balance -= amount`, with the running total `taken` names, only if the balance covers
/// it: one statement, so the check and both figures move together.
pub(super) fn take_from_balance(
    tx: &Transaction<'_>,
    user_id: &str,
    amount: i64,
    taken: Taken,
) -> Result<(), LedgerError> {
    let share = |kind| if taken == kind { amount } else { 0 };
    let changed = tx
        .prepare_cached(
            "UPDATE users SET token_balance = token_balance - ?2, held_tokens = held_tokens + ?3,
                 lifetime_spent = lifetime_spent + ?4
             WHERE id = ?1 AND token_balance >= ?2",
        )?
        .execute(params![
            user_id,
            amount,
            share(Taken::Held),
            share(Taken::Spent)
        ])?;
    if changed == 1 {
        return Ok(());
    }
    let balance = available(tx, user_id).optional()?.unwrap_or(0);
    Err(LedgerError::Insufficient {
        balance,
        needed: amount,
    })
}

/// Decrements spendable lots, soonest expiry first (never-expiring last).
pub(super) fn draw_lots(
    tx: &Transaction<'_>,
    user_id: &str,
    amount: i64,
    now: Millis,
) -> Result<Vec<(i64, i64)>, LedgerError> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, remaining FROM token_lots
         WHERE user_id = ?1 AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?2)
         ORDER BY expires_at IS NULL, expires_at, id",
    )?;
    let mut left = amount;
    let mut drawn = Vec::new();
    let mut rows = stmt.query(params![user_id, now])?;
    while left > 0 {
        let Some(row) = rows.next()? else { break };
        let (lot, remaining): (i64, i64) = (row.get(0)?, row.get(1)?);
        let take = remaining.min(left);
        drawn.push((lot, take));
        left -= take;
    }
    drop(rows);
    if left > 0 {
        return Err(LedgerError::Corrupt(format!(
            "lots of user {user_id} do not cover the balance"
        )));
    }
    let mut update =
        tx.prepare_cached("UPDATE token_lots SET remaining = remaining - ?2 WHERE id = ?1")?;
    for (lot, take) in &drawn {
        update.execute(params![lot, take])?;
    }
    Ok(drawn)
}

/// Puts tokens back into the lots they were drawn from.
pub(super) fn return_to_lots(tx: &Transaction<'_>, lots: &[(i64, i64)]) -> rusqlite::Result<()> {
    let mut update =
        tx.prepare_cached("UPDATE token_lots SET remaining = remaining + ?2 WHERE id = ?1")?;
    for (lot, amount) in lots {
        update.execute(params![lot, amount])?;
    }
    Ok(())
}
