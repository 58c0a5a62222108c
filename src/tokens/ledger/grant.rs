//! Grants: a lot of tokens in, unique per source reference.

use rusqlite::{OptionalExtension, Transaction, params};

use super::entry::{Entry, TransactionView, append};
use super::expiry::expire_due;
use super::kinds::{Source, TransactionKind};
use super::{LedgerError, positive_amount};
use crate::platform::clock::Millis;
use crate::platform::{db, metrics};

/// A grant to make: one lot, unique per (source, source_ref).
pub struct Grant<'a> {
    pub user_id: &'a str,
    pub source: Source,
    pub source_ref: &'a str,
    pub amount: i64,
    pub expires_at: Option<Millis>,
    pub description: Option<&'a str>,
}

pub enum Granted {
    New {
        lot_id: i64,
        transaction: Box<TransactionView>,
    },
    /// That source reference already minted a lot: nothing changed.
    AlreadyGranted { lot_id: i64 },
}

/// Adds a lot and its tokens; a second grant with the same source reference is a no-op.
pub fn grant(tx: &Transaction<'_>, grant: &Grant<'_>, now: Millis) -> Result<Granted, LedgerError> {
    positive_amount(grant.amount)?;
    // So the grant's balance_after never counts lots that have already expired.
    expire_due(tx, Some(grant.user_id), now)?;
    let Some(lot_id) = insert_lot(tx, grant, now)? else {
        return existing_lot(tx, grant);
    };
    tx.execute(
        "UPDATE users SET token_balance = token_balance + ?2, lifetime_earned = lifetime_earned + ?2 WHERE id = ?1",
        params![grant.user_id, grant.amount],
    )?;
    let lots = [(lot_id, grant.amount)];
    let transaction = append(
        tx,
        grant.user_id,
        &Entry {
            source: Some(grant.source),
            reference: Some(grant.source_ref),
            description: grant.description,
            ..Entry::new(TransactionKind::Grant, grant.amount, &lots)
        },
        now,
    )?;
    let (source, amount) = (grant.source.as_str(), grant.amount);
    db::after_commit(move || metrics::tokens_granted(source, amount));
    Ok(Granted::New {
        lot_id,
        transaction: Box::new(transaction),
    })
}

/// The new lot's id, or `None` when its source reference already minted one.
fn insert_lot(
    tx: &Transaction<'_>,
    grant: &Grant<'_>,
    now: Millis,
) -> rusqlite::Result<Option<i64>> {
    tx.query_row(
        "INSERT INTO token_lots (user_id, source, source_ref, amount, remaining, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)
         ON CONFLICT (source, source_ref) DO NOTHING RETURNING id",
        params![grant.user_id, grant.source, grant.source_ref, grant.amount, grant.expires_at, now],
        |r| r.get(0),
    )
    .optional()
}

/// A repeated grant: the same lot when it is the same grant, a conflict otherwise.
fn existing_lot(tx: &Transaction<'_>, grant: &Grant<'_>) -> Result<Granted, LedgerError> {
    let (existing, user, amount): (i64, String, i64) = tx.query_row(
        "SELECT id, user_id, amount FROM token_lots WHERE source = ?1 AND source_ref = ?2",
        params![grant.source, grant.source_ref],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if user != grant.user_id || amount != grant.amount {
        return Err(LedgerError::ReferenceConflict(grant.source_ref.to_owned()));
    }
    Ok(Granted::AlreadyGranted { lot_id: existing })
}
