//! Clawbacks: tokens taken back for a refunded payment, never below a zero balance.

use rusqlite::{OptionalExtension, Transaction, params};

use super::debit::{Taken, draw_lots, take_from_balance};
use super::entry::{Entry, append};
use super::expiry::expire_due;
use super::kinds::TransactionKind;
use super::views::available;
use super::{LedgerError, MAX_AMOUNT};
use crate::platform::clock::Millis;

/// What a clawback did: tokens taken back now, and what could not be (already spent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clawback {
    pub taken: i64,
    pub shortfall: i64,
}

/// Takes back up to `target` tokens in total for `reference` (e.g. a refunded charge),
/// minus what earlier clawbacks for it already took or recorded as shortfall, so a
/// repeated or cumulative refund never claws twice. The lot `from_lot` pays first, then
/// other lots soonest-expiring first; the balance never goes below zero: what is missing
/// is recorded in `token_shortfalls`.
pub fn claw_back(
    tx: &Transaction<'_>,
    user_id: &str,
    from_lot: Option<i64>,
    reference: &str,
    target: i64,
    description: &str,
    now: Millis,
) -> Result<Clawback, LedgerError> {
    if !(0..=MAX_AMOUNT).contains(&target) {
        return Err(LedgerError::InvalidAmount(target));
    }
    expire_due(tx, Some(user_id), now)?;
    let wanted = target - already_clawed(tx, user_id, reference)?;
    if wanted <= 0 {
        return Ok(Clawback {
            taken: 0,
            shortfall: 0,
        });
    }
    let balance = available(tx, user_id)?;
    let taken = wanted.min(balance);
    let shortfall = wanted - taken;
    if taken > 0 {
        take_from_balance(tx, user_id, taken, Taken::Removed)?;
        let drawn = draw_for_clawback(tx, user_id, from_lot, taken, now)?;
        append(
            tx,
            user_id,
            &Entry {
                reference: Some(reference),
                description: Some(description),
                ..Entry::new(TransactionKind::Clawback, -taken, &drawn)
            },
            now,
        )?;
    }
    if shortfall > 0 {
        tx.execute(
            "INSERT INTO token_shortfalls (user_id, reference, amount, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![user_id, reference, shortfall, now],
        )?;
    }
    Ok(Clawback { taken, shortfall })
}

/// What earlier clawbacks for `reference` took or recorded as shortfall.
fn already_clawed(tx: &Transaction<'_>, user_id: &str, reference: &str) -> rusqlite::Result<i64> {
    tx.query_row(
        "SELECT (SELECT COALESCE(-SUM(amount), 0) FROM token_transactions
                 WHERE user_id = ?1 AND kind = ?3 AND reference = ?2)
              + (SELECT COALESCE(SUM(amount), 0) FROM token_shortfalls WHERE user_id = ?1 AND reference = ?2)",
        params![user_id, reference, TransactionKind::Clawback],
        |r| r.get(0),
    )
}

/// Draws `amount` from the lots: `from_lot` first (as far as it still holds), then the
/// others soonest-expiring first.
fn draw_for_clawback(
    tx: &Transaction<'_>,
    user_id: &str,
    from_lot: Option<i64>,
    amount: i64,
    now: Millis,
) -> Result<Vec<(i64, i64)>, LedgerError> {
    let mut drawn = Vec::new();
    let mut left = amount;
    if let Some(lot) = from_lot {
        let remaining: i64 = tx
            .query_row(
                "SELECT remaining FROM token_lots WHERE id = ?1 AND user_id = ?2",
                params![lot, user_id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let take = remaining.min(left);
        if take > 0 {
            tx.execute(
                "UPDATE token_lots SET remaining = remaining - ?2 WHERE id = ?1",
                params![lot, take],
            )?;
            drawn.push((lot, take));
            left -= take;
        }
    }
    if left > 0 {
        drawn.extend(draw_lots(tx, user_id, left, now)?);
    }
    Ok(drawn)
}
