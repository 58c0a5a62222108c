//! Lot expiry: what a lot still holds past its time leaves through an `expire` row.

use rusqlite::{Transaction, params};

use super::LedgerError;
use super::entry::{Entry, append};
use super::kinds::TransactionKind;
use crate::platform::clock::Millis;

/// Moves the remaining tokens of lots past their expiry out through `expire` rows, at
/// most 1,000 lots a call. With `user_id`, only that user's lots. Returns how many
/// tokens expired.
pub fn expire_due(
    tx: &Transaction<'_>,
    user_id: Option<&str>,
    now: Millis,
) -> Result<i64, LedgerError> {
    // Two statements, so each has its index: one user's lots (a spend's own, on every
    // spend) or every user's (the sweeper).
    let due: Vec<(i64, String, i64)> = match user_id {
        Some(user) => tx
            .prepare_cached(
                "SELECT id, user_id, remaining FROM token_lots
                 WHERE user_id = ?2 AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?1
                 ORDER BY id LIMIT 1000",
            )?
            .query_map(params![now, user], due_lot)?
            .collect::<rusqlite::Result<_>>()?,
        None => tx
            .prepare_cached(
                "SELECT id, user_id, remaining FROM token_lots
                 WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?1
                 ORDER BY id LIMIT 1000",
            )?
            .query_map(params![now], due_lot)?
            .collect::<rusqlite::Result<_>>()?,
    };
    let mut total = 0;
    for (lot, user, remaining) in due {
        tx.execute("UPDATE token_lots SET remaining = 0 WHERE id = ?1", [lot])?;
        tx.execute(
            "UPDATE users SET token_balance = token_balance - ?2 WHERE id = ?1",
            params![user, remaining],
        )?;
        let reference = lot.to_string();
        let lots = [(lot, remaining)];
        append(
            tx,
            &user,
            &Entry {
                reference: Some(&reference),
                description: Some("tokens expired"),
                ..Entry::new(TransactionKind::Expire, -remaining, &lots)
            },
            now,
        )?;
        total += remaining;
    }
    Ok(total)
}

/// (lot, user, remaining) of a lot past its expiry.
fn due_lot(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}
