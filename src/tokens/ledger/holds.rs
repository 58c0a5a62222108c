//! Holds: tokens reserved for a job, then captured (spent), released or expired.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::debit::{Taken, draw_lots, return_to_lots, take_from_balance};
use super::entry::{Entry, append, lots_json};
use super::expiry::expire_due;
use super::kinds::{HoldStatus, TransactionKind};
use super::{LedgerError, positive_amount};
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::{HoldId, UserId};
use crate::platform::{db, metrics};

/// A reservation as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HoldView {
    #[schema(value_type = String)]
    pub id: HoldId,
    pub amount: i64,
    /// How much was captured, once captured.
    pub captured: Option<i64>,
    pub feature: String,
    /// `open`, `captured`, `released` or `expired`.
    #[schema(value_type = String)]
    pub status: HoldStatus,
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
    user_id: &UserId,
    amount: i64,
    feature: &str,
    expires_at: Millis,
    now: Millis,
) -> Result<HoldView, LedgerError> {
    positive_amount(amount)?;
    expire_due(tx, Some(user_id.as_str()), now)?;
    take_from_balance(tx, user_id, amount, Taken::Held)?;
    let lots = draw_lots(tx, user_id, amount, now)?;
    let id = HoldId::from(uuid::Uuid::now_v7().to_string());
    tx.execute(
        "INSERT INTO token_holds (id, user_id, amount, feature, status, lots, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![id, user_id, amount, feature, HoldStatus::Open, lots_json(&lots), expires_at, now],
    )?;
    append(
        tx,
        user_id,
        &Entry {
            description: Some("tokens reserved for a job"),
            feature: Some(feature),
            hold_id: Some(&id),
            ..Entry::new(TransactionKind::Hold, -amount, &lots)
        },
        now,
    )?;
    find_hold(tx, user_id, &id)?.ok_or(LedgerError::HoldNotFound)
}

fn load_hold(
    conn: &Connection,
    user_id: &str,
    hold_id: &HoldId,
) -> rusqlite::Result<Option<HoldRow>> {
    conn.query_row(
        &format!("SELECT {HOLD_COLUMNS} FROM token_holds WHERE id = ?1 AND user_id = ?2"),
        params![hold_id, user_id],
        hold_from_row,
    )
    .optional()
}

pub fn find_hold(
    conn: &Connection,
    user_id: &UserId,
    hold_id: &HoldId,
) -> rusqlite::Result<Option<HoldView>> {
    Ok(load_hold(conn, user_id, hold_id)?.map(|h| h.view))
}

fn open_hold(
    tx: &Transaction<'_>,
    user_id: &UserId,
    hold_id: &HoldId,
    now: Millis,
) -> Result<HoldRow, LedgerError> {
    let hold = load_hold(tx, user_id, hold_id)?.ok_or(LedgerError::HoldNotFound)?;
    if hold.view.status != HoldStatus::Open {
        return Err(LedgerError::HoldNotOpen(hold.view.status));
    }
    if hold.expires_at <= now {
        return Err(LedgerError::HoldNotOpen(HoldStatus::Expired));
    }
    Ok(hold)
}

/// Gives `amount` back from a hold's lots, then expires what is overdue.
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

/// Returns `amount` to the hold's lots, latest-drawn first, through a `hold_release` row.
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
            description: Some("reserved tokens returned"),
            feature: Some(&hold.view.feature),
            hold_id: Some(&hold.view.id),
            ..Entry::new(TransactionKind::HoldRelease, amount, &returned)
        },
        now,
    )?;
    Ok(())
}

/// Spends `amount` of a hold (at most what it reserved) and returns the rest.
pub fn capture_hold(
    tx: &Transaction<'_>,
    user_id: &UserId,
    hold_id: &HoldId,
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
    settle(tx, user_id, &hold, HoldStatus::Captured, Some(amount), now)?;
    tx.execute(
        "UPDATE users SET lifetime_spent = lifetime_spent + ?2 WHERE id = ?1",
        params![user_id, amount],
    )?;
    return_from_hold(tx, user_id, &hold, hold.view.amount - amount, now)?;
    let feature = metrics::interned(&hold.view.feature);
    db::after_commit(move || metrics::tokens_spent(feature, amount));
    find_hold(tx, user_id, hold_id)?.ok_or(LedgerError::HoldNotFound)
}

/// Returns every reserved token of an open hold.
pub fn release_hold(
    tx: &Transaction<'_>,
    user_id: &UserId,
    hold_id: &HoldId,
    now: Millis,
) -> Result<HoldView, LedgerError> {
    let hold = open_hold(tx, user_id, hold_id, now)?;
    settle(tx, user_id, &hold, HoldStatus::Released, None, now)?;
    return_from_hold(tx, user_id, &hold, hold.view.amount, now)?;
    find_hold(tx, user_id, hold_id)?.ok_or(LedgerError::HoldNotFound)
}

/// Moves an open hold to `status` and its tokens out of `held_tokens`.
fn settle(
    tx: &Transaction<'_>,
    user_id: &str,
    hold: &HoldRow,
    status: HoldStatus,
    captured: Option<i64>,
    now: Millis,
) -> Result<(), LedgerError> {
    let settled = tx.execute(
        "UPDATE token_holds SET status = ?2, captured = ?3, settled_at = ?4 WHERE id = ?1 AND status = ?5",
        params![hold.view.id, status, captured, now, HoldStatus::Open],
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
pub fn expire_holds(tx: &Transaction<'_>, now: Millis) -> Result<Vec<HoldId>, LedgerError> {
    let due: Vec<(String, HoldId)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT user_id, id FROM token_holds WHERE status = ?2 AND expires_at <= ?1 ORDER BY expires_at LIMIT 1000",
        )?;
        stmt.query_map(params![now, HoldStatus::Open], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    for (user_id, hold_id) in &due {
        let hold = load_hold(tx, user_id, hold_id)?.ok_or(LedgerError::HoldNotFound)?;
        settle(tx, user_id, &hold, HoldStatus::Expired, None, now)?;
        return_from_hold(tx, user_id, &hold, hold.view.amount, now)?;
    }
    Ok(due.into_iter().map(|(_, id)| id).collect())
}

/// The user's holds, newest first; an open hold past its expiry shows as `expired`
/// even before the sweeper releases it.
pub fn list_holds(
    conn: &Connection,
    user_id: &UserId,
    status: Option<HoldStatus>,
    now: Millis,
) -> rusqlite::Result<Vec<HoldView>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {HOLD_COLUMNS} FROM token_holds
         WHERE user_id = ?1
           AND (?2 IS NULL OR (CASE WHEN status = ?4 AND expires_at <= ?3 THEN ?5 ELSE status END) = ?2)
         ORDER BY created_at DESC, id DESC LIMIT 200"
    ))?;
    let (open, expired) = (HoldStatus::Open, HoldStatus::Expired);
    stmt.query_map(params![user_id, status, now, open, expired], |r| {
        let mut hold = hold_from_row(r)?;
        if hold.view.status == HoldStatus::Open && hold.expires_at <= now {
            hold.view.status = HoldStatus::Expired;
        }
        Ok(hold.view)
    })?
    .collect()
}
