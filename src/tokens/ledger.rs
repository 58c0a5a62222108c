//! The ledger: lots in, debits out, holds in between; every balance change is one appended row.
//!
//! All functions run inside the caller's write transaction. For every user they keep
//! `users.token_balance == SUM(token_transactions.amount) == SUM(token_lots.remaining)`
//! and `users.held_tokens == SUM(open holds)`; `check` verifies it.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::platform::clock::{Millis, rfc3339};

/// The largest amount one call may move; far above any real job, far below overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000;

fn check_amount(amount: i64) -> Result<(), LedgerError> {
    if (1..=MAX_AMOUNT).contains(&amount) {
        Ok(())
    } else {
        Err(LedgerError::InvalidAmount(amount))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Subscription,
    Purchase,
    Reward,
    Admin,
    Refund,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Subscription => "subscription",
            Source::Purchase => "purchase",
            Source::Reward => "reward",
            Source::Admin => "admin",
            Source::Refund => "refund",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("not enough tokens: the balance is {balance}, {needed} needed")]
    Insufficient { balance: i64, needed: i64 },
    #[error("no such hold")]
    HoldNotFound,
    #[error("the hold is {0}, not open")]
    HoldNotOpen(String),
    #[error("cannot capture {requested}: the hold reserved only {held}")]
    CaptureTooLarge { requested: i64, held: i64 },
    #[error("an amount must be from 1 to {max}, not {0}", max = MAX_AMOUNT)]
    InvalidAmount(i64),
    #[error("reference {0} already minted a lot for another user or amount")]
    ReferenceConflict(String),
    #[error("ledger invariant broken: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// One ledger row as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransactionView {
    pub id: i64,
    /// `grant`, `spend`, `hold`, `hold_release`, `expire` or `clawback`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Signed: positive adds tokens, negative removes them.
    pub amount: i64,
    pub balance_after: i64,
    pub source: Option<String>,
    pub reference: Option<String>,
    pub description: Option<String>,
    pub feature: Option<String>,
    pub hold_id: Option<String>,
    /// The lots drawn from or returned to: `[{"lot": id, "amount": n}]`.
    #[schema(value_type = Vec<Object>)]
    pub lots: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: String,
}

const TRANSACTION_COLUMNS: &str = "id, kind, amount, balance_after, source, reference, description, feature, hold_id, lots, metadata, created_at";

fn transaction_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TransactionView> {
    let lots: String = r.get(9)?;
    let metadata: String = r.get(10)?;
    Ok(TransactionView {
        id: r.get(0)?,
        kind: r.get(1)?,
        amount: r.get(2)?,
        balance_after: r.get(3)?,
        source: r.get(4)?,
        reference: r.get(5)?,
        description: r.get(6)?,
        feature: r.get(7)?,
        hold_id: r.get(8)?,
        lots: serde_json::from_str(&lots).unwrap_or(Value::Array(vec![])),
        metadata: serde_json::from_str(&metadata).unwrap_or(Value::Object(Default::default())),
        created_at: rfc3339(r.get(11)?),
    })
}

/// A ledger row to append; the balance after it is read from `users`.
#[derive(Default)]
struct Entry<'a> {
    kind: &'a str,
    amount: i64,
    source: Option<&'a str>,
    reference: Option<&'a str>,
    description: Option<&'a str>,
    feature: Option<&'a str>,
    hold_id: Option<&'a str>,
    lots: &'a [(i64, i64)],
    metadata: Option<&'a Value>,
}

fn lots_json(lots: &[(i64, i64)]) -> String {
    Value::Array(
        lots.iter()
            .map(|(lot, amount)| json!({ "lot": lot, "amount": amount }))
            .collect(),
    )
    .to_string()
}

fn append(
    tx: &Transaction<'_>,
    user_id: &str,
    entry: &Entry<'_>,
    now: Millis,
) -> Result<TransactionView, LedgerError> {
    let metadata = entry
        .metadata
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    let mut insert = tx.prepare_cached(
        "INSERT INTO token_transactions
            (user_id, kind, amount, balance_after, source, reference, description, feature, hold_id, lots, metadata, created_at)
         VALUES (?1, ?2, ?3, (SELECT token_balance FROM users WHERE id = ?1), ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         RETURNING id, kind, amount, balance_after, source, reference, description, feature, hold_id, lots, metadata, created_at",
    )?;
    let row = insert.query_row(
        params![
            user_id,
            entry.kind,
            entry.amount,
            entry.source,
            entry.reference,
            entry.description,
            entry.feature,
            entry.hold_id,
            lots_json(entry.lots),
            metadata,
            now
        ],
        transaction_from_row,
    )?;
    Ok(row)
}

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
    check_amount(grant.amount)?;
    // So the grant's balance_after never counts lots that have already expired.
    expire_due(tx, Some(grant.user_id), now)?;
    let lot_id: Option<i64> = tx
        .query_row(
            "INSERT INTO token_lots (user_id, source, source_ref, amount, remaining, expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)
             ON CONFLICT (source, source_ref) DO NOTHING RETURNING id",
            params![grant.user_id, grant.source.as_str(), grant.source_ref, grant.amount, grant.expires_at, now],
            |r| r.get(0),
        )
        .optional()?;
    let Some(lot_id) = lot_id else {
        let (existing, user, amount): (i64, String, i64) = tx.query_row(
            "SELECT id, user_id, amount FROM token_lots WHERE source = ?1 AND source_ref = ?2",
            params![grant.source.as_str(), grant.source_ref],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if user != grant.user_id || amount != grant.amount {
            return Err(LedgerError::ReferenceConflict(grant.source_ref.to_owned()));
        }
        return Ok(Granted::AlreadyGranted { lot_id: existing });
    };
    tx.execute(
        "UPDATE users SET token_balance = token_balance + ?2, lifetime_earned = lifetime_earned + ?2 WHERE id = ?1",
        params![grant.user_id, grant.amount],
    )?;
    let transaction = append(
        tx,
        grant.user_id,
        &Entry {
            kind: "grant",
            amount: grant.amount,
            source: Some(grant.source.as_str()),
            reference: Some(grant.source_ref),
            description: grant.description,
            lots: &[(lot_id, grant.amount)],
            ..Entry::default()
        },
        now,
    )?;
    Ok(Granted::New {
        lot_id,
        transaction: Box::new(transaction),
    })
}

/// A spend to make.
pub struct Debit<'a> {
    pub user_id: &'a str,
    pub amount: i64,
    pub feature: &'a str,
    pub description: Option<&'a str>,
    pub metadata: Option<&'a Value>,
}

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
    let already: i64 = tx.query_row(
        "SELECT (SELECT COALESCE(-SUM(amount), 0) FROM token_transactions
                 WHERE user_id = ?1 AND kind = 'clawback' AND reference = ?2)
              + (SELECT COALESCE(SUM(amount), 0) FROM token_shortfalls WHERE user_id = ?1 AND reference = ?2)",
        params![user_id, reference],
        |r| r.get(0),
    )?;
    let wanted = target - already;
    if wanted <= 0 {
        return Ok(Clawback {
            taken: 0,
            shortfall: 0,
        });
    }
    let balance: i64 = tx.query_row(
        "SELECT token_balance FROM users WHERE id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    let taken = wanted.min(balance);
    let shortfall = wanted - taken;
    if taken > 0 {
        take_from_balance(tx, user_id, taken, 0)?;
        let mut drawn = Vec::new();
        let mut left = taken;
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
        append(
            tx,
            user_id,
            &Entry {
                kind: "clawback",
                amount: -taken,
                reference: Some(reference),
                description: Some(description),
                lots: &drawn,
                ..Entry::default()
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

/// Takes tokens out through a guarded statement, soonest-expiring lots first.
pub fn debit(
    tx: &Transaction<'_>,
    debit: &Debit<'_>,
    now: Millis,
) -> Result<TransactionView, LedgerError> {
    check_amount(debit.amount)?;
    expire_due(tx, Some(debit.user_id), now)?;
    take_from_balance(tx, debit.user_id, debit.amount, 0)?;
    tx.prepare_cached("UPDATE users SET lifetime_spent = lifetime_spent + ?2 WHERE id = ?1")?
        .execute(params![debit.user_id, debit.amount])?;
    let lots = draw_lots(tx, debit.user_id, debit.amount, now)?;
    append(
        tx,
        debit.user_id,
        &Entry {
            kind: "spend",
            amount: -debit.amount,
            description: debit.description,
            feature: Some(debit.feature),
            lots: &lots,
            metadata: debit.metadata,
            ..Entry::default()
        },
        now,
    )
}

/// `balance -= amount` (and `held += to_held`) only if the balance covers it.
fn take_from_balance(
    tx: &Transaction<'_>,
    user_id: &str,
    amount: i64,
    to_held: i64,
) -> Result<(), LedgerError> {
    let changed = tx
        .prepare_cached(
            "UPDATE users SET token_balance = token_balance - ?2, held_tokens = held_tokens + ?3
             WHERE id = ?1 AND token_balance >= ?2",
        )?
        .execute(params![user_id, amount, to_held])?;
    if changed == 1 {
        return Ok(());
    }
    let balance: i64 = tx
        .query_row(
            "SELECT token_balance FROM users WHERE id = ?1",
            [user_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    Err(LedgerError::Insufficient {
        balance,
        needed: amount,
    })
}

/// Decrements spendable lots, soonest expiry first (never-expiring last).
fn draw_lots(
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

fn return_to_lots(tx: &Transaction<'_>, lots: &[(i64, i64)]) -> rusqlite::Result<()> {
    let mut update =
        tx.prepare_cached("UPDATE token_lots SET remaining = remaining + ?2 WHERE id = ?1")?;
    for (lot, amount) in lots {
        update.execute(params![lot, amount])?;
    }
    Ok(())
}

/// Moves the remaining tokens of lots past their expiry out through `expire` rows, at
/// most 1,000 lots a call. With `user_id`, only that user's lots. Returns how many
/// tokens expired.
pub fn expire_due(
    tx: &Transaction<'_>,
    user_id: Option<&str>,
    now: Millis,
) -> Result<i64, LedgerError> {
    let due: Vec<(i64, String, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, user_id, remaining FROM token_lots
             WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?1 AND (?2 IS NULL OR user_id = ?2)
             ORDER BY id LIMIT 1000",
        )?;
        stmt.query_map(params![now, user_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let mut total = 0;
    for (lot, user, remaining) in due {
        tx.execute("UPDATE token_lots SET remaining = 0 WHERE id = ?1", [lot])?;
        tx.execute(
            "UPDATE users SET token_balance = token_balance - ?2 WHERE id = ?1",
            params![user, remaining],
        )?;
        let reference = lot.to_string();
        append(
            tx,
            &user,
            &Entry {
                kind: "expire",
                amount: -remaining,
                reference: Some(&reference),
                description: Some("tokens expired"),
                lots: &[(lot, remaining)],
                ..Entry::default()
            },
            now,
        )?;
        total += remaining;
    }
    Ok(total)
}

/// A reservation as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HoldView {
    pub id: String,
    pub amount: i64,
    /// How much was captured, once captured.
    pub captured: Option<i64>,
    pub feature: String,
    /// `open`, `captured`, `released` or `expired`.
    pub status: String,
    pub expires_at: String,
    pub created_at: String,
    pub settled_at: Option<String>,
}

struct HoldRow {
    view: HoldView,
    lots: Vec<(i64, i64)>,
    expires_at: Millis,
}

const HOLD_COLUMNS: &str =
    "id, amount, captured, feature, status, expires_at, created_at, settled_at, lots";

fn hold_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HoldRow> {
    let lots: String = r.get(8)?;
    let lots: Vec<Value> = serde_json::from_str(&lots).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let expires_at: Millis = r.get(5)?;
    Ok(HoldRow {
        view: HoldView {
            id: r.get(0)?,
            amount: r.get(1)?,
            captured: r.get(2)?,
            feature: r.get(3)?,
            status: r.get(4)?,
            expires_at: rfc3339(expires_at),
            created_at: rfc3339(r.get(6)?),
            settled_at: r.get::<_, Option<Millis>>(7)?.map(rfc3339),
        },
        lots: lots
            .iter()
            .filter_map(|l| Some((l["lot"].as_i64()?, l["amount"].as_i64()?)))
            .collect(),
        expires_at,
    })
}

/// Reserves tokens: they leave the balance, drawn from lots, and show as held.
pub fn create_hold(
    tx: &Transaction<'_>,
    user_id: &str,
    amount: i64,
    feature: &str,
    expires_at: Millis,
    now: Millis,
) -> Result<HoldView, LedgerError> {
    check_amount(amount)?;
    expire_due(tx, Some(user_id), now)?;
    take_from_balance(tx, user_id, amount, amount)?;
    let lots = draw_lots(tx, user_id, amount, now)?;
    let id = uuid::Uuid::now_v7().to_string();
    tx.execute(
        "INSERT INTO token_holds (id, user_id, amount, feature, status, lots, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7)",
        params![id, user_id, amount, feature, lots_json(&lots), expires_at, now],
    )?;
    append(
        tx,
        user_id,
        &Entry {
            kind: "hold",
            amount: -amount,
            description: Some("tokens reserved for a job"),
            feature: Some(feature),
            hold_id: Some(&id),
            lots: &lots,
            ..Entry::default()
        },
        now,
    )?;
    find_hold(tx, user_id, &id)?.ok_or(LedgerError::HoldNotFound)
}

fn load_hold(conn: &Connection, user_id: &str, hold_id: &str) -> rusqlite::Result<Option<HoldRow>> {
    conn.query_row(
        &format!("SELECT {HOLD_COLUMNS} FROM token_holds WHERE id = ?1 AND user_id = ?2"),
        params![hold_id, user_id],
        hold_from_row,
    )
    .optional()
}

pub fn find_hold(
    conn: &Connection,
    user_id: &str,
    hold_id: &str,
) -> rusqlite::Result<Option<HoldView>> {
    Ok(load_hold(conn, user_id, hold_id)?.map(|h| h.view))
}

fn open_hold(
    tx: &Transaction<'_>,
    user_id: &str,
    hold_id: &str,
    now: Millis,
) -> Result<HoldRow, LedgerError> {
    let hold = load_hold(tx, user_id, hold_id)?.ok_or(LedgerError::HoldNotFound)?;
    if hold.view.status != "open" {
        return Err(LedgerError::HoldNotOpen(hold.view.status));
    }
    if hold.expires_at <= now {
        return Err(LedgerError::HoldNotOpen("expired".into()));
    }
    Ok(hold)
}

/// Gives `amount` back from a hold's lots, latest-drawn first; returns what went where.
fn return_from_hold(
    tx: &Transaction<'_>,
    user_id: &str,
    hold: &HoldRow,
    amount: i64,
    now: Millis,
) -> Result<(), LedgerError> {
    if amount > 0 {
        give_back(tx, user_id, hold, amount, now)?;
    }
    // A lot may have expired while its tokens were reserved (or is otherwise overdue).
    expire_due(tx, Some(user_id), now)?;
    Ok(())
}

fn give_back(
    tx: &Transaction<'_>,
    user_id: &str,
    hold: &HoldRow,
    amount: i64,
    now: Millis,
) -> Result<(), LedgerError> {
    let mut left = amount;
    let mut returned = Vec::new();
    for (lot, drawn) in hold.lots.iter().rev() {
        if left == 0 {
            break;
        }
        let give = (*drawn).min(left);
        returned.push((*lot, give));
        left -= give;
    }
    if left > 0 {
        return Err(LedgerError::Corrupt(format!(
            "hold {} drew fewer tokens than it reserved",
            hold.view.id
        )));
    }
    return_to_lots(tx, &returned)?;
    tx.execute(
        "UPDATE users SET token_balance = token_balance + ?2 WHERE id = ?1",
        params![user_id, amount],
    )?;
    append(
        tx,
        user_id,
        &Entry {
            kind: "hold_release",
            amount,
            description: Some("reserved tokens returned"),
            feature: Some(&hold.view.feature),
            hold_id: Some(&hold.view.id),
            lots: &returned,
            ..Entry::default()
        },
        now,
    )?;
    Ok(())
}

/// Spends `amount` of a hold (at most what it reserved) and returns the rest.
pub fn capture_hold(
    tx: &Transaction<'_>,
    user_id: &str,
    hold_id: &str,
    amount: i64,
    now: Millis,
) -> Result<HoldView, LedgerError> {
    let hold = open_hold(tx, user_id, hold_id, now)?;
    if !(0..=hold.view.amount).contains(&amount) {
        return Err(LedgerError::CaptureTooLarge {
            requested: amount,
            held: hold.view.amount,
        });
    }
    settle(tx, user_id, &hold, "captured", Some(amount), now)?;
    tx.execute(
        "UPDATE users SET lifetime_spent = lifetime_spent + ?2 WHERE id = ?1",
        params![user_id, amount],
    )?;
    return_from_hold(tx, user_id, &hold, hold.view.amount - amount, now)?;
    find_hold(tx, user_id, hold_id)?.ok_or(LedgerError::HoldNotFound)
}

/// Returns every reserved token of an open hold.
pub fn release_hold(
    tx: &Transaction<'_>,
    user_id: &str,
    hold_id: &str,
    now: Millis,
) -> Result<HoldView, LedgerError> {
    let hold = open_hold(tx, user_id, hold_id, now)?;
    settle(tx, user_id, &hold, "released", None, now)?;
    return_from_hold(tx, user_id, &hold, hold.view.amount, now)?;
    find_hold(tx, user_id, hold_id)?.ok_or(LedgerError::HoldNotFound)
}

fn settle(
    tx: &Transaction<'_>,
    user_id: &str,
    hold: &HoldRow,
    status: &str,
    captured: Option<i64>,
    now: Millis,
) -> Result<(), LedgerError> {
    let settled = tx.execute(
        "UPDATE token_holds SET status = ?2, captured = ?3, settled_at = ?4 WHERE id = ?1 AND status = 'open'",
        params![hold.view.id, status, captured, now],
    )?;
    if settled != 1 {
        return Err(LedgerError::Corrupt(format!(
            "hold {} was not open",
            hold.view.id
        )));
    }
    tx.execute(
        "UPDATE users SET held_tokens = held_tokens - ?2 WHERE id = ?1",
        params![user_id, hold.view.amount],
    )?;
    Ok(())
}

/// Releases open holds past their expiry, at most 1,000 a call; returns their ids.
pub fn expire_holds(tx: &Transaction<'_>, now: Millis) -> Result<Vec<String>, LedgerError> {
    let due: Vec<(String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT user_id, id FROM token_holds WHERE status = 'open' AND expires_at <= ?1 ORDER BY expires_at LIMIT 1000",
        )?;
        stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (user_id, hold_id) in &due {
        let hold = load_hold(tx, user_id, hold_id)?.ok_or(LedgerError::HoldNotFound)?;
        settle(tx, user_id, &hold, "expired", None, now)?;
        return_from_hold(tx, user_id, &hold, hold.view.amount, now)?;
    }
    Ok(due.into_iter().map(|(_, id)| id).collect())
}

/// The user's holds, newest first; an open hold past its expiry shows as `expired`
/// even before the sweeper releases it.
pub fn list_holds(
    conn: &Connection,
    user_id: &str,
    status: Option<&str>,
    now: Millis,
) -> rusqlite::Result<Vec<HoldView>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {HOLD_COLUMNS} FROM token_holds
         WHERE user_id = ?1
           AND (?2 IS NULL OR (CASE WHEN status = 'open' AND expires_at <= ?3 THEN 'expired' ELSE status END) = ?2)
         ORDER BY created_at DESC, id DESC LIMIT 200"
    ))?;
    stmt.query_map(params![user_id, status, now], |r| {
        let mut hold = hold_from_row(r)?;
        if hold.view.status == "open" && hold.expires_at <= now {
            hold.view.status = "expired".into();
        }
        Ok(hold.view)
    })?
    .collect()
}

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

/// The balance as of `now`: lots past their expiry never count, even before the worker
/// runs. Its cost does not grow with the history: totals are kept on the user's row.
pub fn balance(conn: &Connection, user_id: &str, now: Millis) -> rusqlite::Result<BalanceView> {
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
    user_id: &str,
    kind: Option<&str>,
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

/// A user whose cached figures disagree with the ledger, lots or holds.
#[derive(Debug, Serialize)]
pub struct Mismatch {
    pub user_id: String,
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

/// Verifies the money invariants for every user.
pub fn check(conn: &Connection) -> rusqlite::Result<(u64, Vec<Mismatch>)> {
    let mut stmt = conn.prepare(
        "SELECT u.id, u.email, u.token_balance,
                (SELECT COALESCE(SUM(amount), 0) FROM token_transactions t WHERE t.user_id = u.id),
                (SELECT COALESCE(SUM(remaining), 0) FROM token_lots l WHERE l.user_id = u.id),
                u.held_tokens,
                (SELECT COALESCE(SUM(amount), 0) FROM token_holds h WHERE h.user_id = u.id AND h.status = 'open'),
                (SELECT balance_after FROM token_transactions t WHERE t.user_id = u.id ORDER BY id DESC LIMIT 1),
                u.lifetime_earned,
                (SELECT COALESCE(SUM(amount), 0) FROM token_transactions t WHERE t.user_id = u.id AND t.kind = 'grant'),
                u.lifetime_spent,
                (SELECT COALESCE(-SUM(amount), 0) FROM token_transactions t WHERE t.user_id = u.id AND t.kind = 'spend')
                  + (SELECT COALESCE(SUM(captured), 0) FROM token_holds h WHERE h.user_id = u.id AND h.status = 'captured')
         FROM users u ORDER BY u.id",
    )?;
    let mut users = 0;
    let mut mismatches = Vec::new();
    let mut rows = stmt.query([])?;
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
        let consistent = m.cached_balance == m.ledger_sum
            && m.ledger_sum == m.lots_remaining
            && m.cached_held == m.open_holds
            && m.last_balance_after.unwrap_or(0) == m.cached_balance
            && m.cached_earned == m.ledger_earned
            && m.cached_spent == m.ledger_spent;
        if !consistent {
            mismatches.push(m);
        }
    }
    Ok((users, mismatches))
}
