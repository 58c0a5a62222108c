//! Intake and processing: storing a delivery once, claiming due events with a lease, recording each outcome with backoff.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::platform::backoff::backoff_ms;
use crate::platform::clock::Millis;
use crate::webhooks::handler::{Handled, HandlerError, StoredEvent};
use crate::webhooks::status::EventStatus;

/// Longest error text kept on a row.
const MAX_ERROR_CHARS: usize = 2000;

/// A verified delivery, ready to be stored.
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    /// The raw body, exactly as signed.
    pub payload: &'a str,
    pub livemode: bool,
    pub api_version: Option<&'a str>,
    pub object_id: Option<&'a str>,
    /// `Some(reason)` stores the event as `ignored` (e.g. the other live/test mode).
    pub ignore: Option<String>,
}

/// Stores the event unless its Stripe id is already there; true when it was new.
pub fn insert(tx: &Transaction<'_>, event: &NewEvent<'_>, now: Millis) -> rusqlite::Result<bool> {
    let (status, next_attempt_at, processed_at) = match event.ignore {
        None => (EventStatus::Pending, Some(now), None),
        Some(_) => (EventStatus::Ignored, None, Some(now)),
    };
    let inserted = tx.execute(
        "INSERT INTO webhook_events (id, event_type, payload, livemode, api_version, object_id, status,
                                     next_attempt_at, note, received_at, processed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (id) DO NOTHING",
        params![
            event.id,
            event.event_type,
            event.payload,
            event.livemode,
            event.api_version,
            event.object_id,
            status,
            next_attempt_at,
            event.ignore,
            now,
            processed_at
        ],
    )?;
    Ok(inserted == 1)
}

/// What a claim found.
pub enum Claim {
    /// Nothing is due.
    Idle,
    /// This event is now `processing`, leased until `now + lease_ms`.
    Event(Box<StoredEvent>),
}

/// Claims the oldest due event: `pending` and due, or `processing` whose lease lapsed (a
/// worker that stopped mid-way). The claim counts as an attempt, so an event that keeps
/// killing its worker still ends `failed` after `max_attempts`.
pub fn claim_next(
    tx: &Transaction<'_>,
    now: Millis,
    lease_ms: Millis,
    max_attempts: u32,
) -> rusqlite::Result<Claim> {
    loop {
        let due: Option<(String, EventStatus, u32)> = tx
            .query_row(
                "SELECT id, status, attempts FROM webhook_events
                 WHERE status IN ('pending', 'processing') AND next_attempt_at <= ?1
                 ORDER BY received_at, id LIMIT 1",
                [now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((id, status, attempts)) = due else {
            return Ok(Claim::Idle);
        };
        if status == EventStatus::Processing && attempts >= max_attempts.max(1) {
            let error = format!(
                "processing did not finish within its lease (the worker may have stopped); gave up after {attempts} attempts"
            );
            tx.execute(
                "UPDATE webhook_events SET status = 'failed', next_attempt_at = NULL, last_error = ?2, last_error_at = ?3
                 WHERE id = ?1",
                params![id, error, now],
            )?;
            tracing::warn!(event_id = %id, attempts, "webhook event failed: its processing never finished");
            continue;
        }
        if status == EventStatus::Processing {
            tracing::warn!(event_id = %id, "webhook event claim lapsed; claiming it again");
        }
        let event = tx.query_row(
            "UPDATE webhook_events SET status = 'processing', attempts = attempts + 1, next_attempt_at = ?2
             WHERE id = ?1
             RETURNING id, event_type, payload, object_id, livemode, api_version, attempts, received_at",
            params![id, now + lease_ms],
            |r| {
                let payload: String = r.get(2)?;
                Ok(StoredEvent {
                    id: r.get(0)?,
                    event_type: r.get(1)?,
                    payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                    object_id: r.get(3)?,
                    livemode: r.get(4)?,
                    api_version: r.get(5)?,
                    attempts: r.get(6)?,
                    received_at: r.get(7)?,
                })
            },
        )?;
        return Ok(Claim::Event(Box::new(event)));
    }
}

/// What became of one claimed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Processed,
    Ignored,
    /// Pending again, due at this time.
    Retry(Millis),
    Failed,
    /// The claim had lapsed and someone else holds the event now; nothing was written.
    Lost,
}

/// Writes the outcome of the handler for an event claimed with `attempts`.
pub fn record_outcome(
    tx: &Transaction<'_>,
    id: &str,
    attempts: u32,
    outcome: &Result<Handled, HandlerError>,
    max_attempts: u32,
    now: Millis,
) -> rusqlite::Result<Recorded> {
    // Only the claim we made may be settled: same status and attempt count.
    let guard = "WHERE id = ?1 AND status = 'processing' AND attempts = ?2";
    let (changed, recorded) = match outcome {
        Ok(Handled::Processed) => (
            tx.execute(
                &format!("UPDATE webhook_events SET status = 'processed', processed_at = ?3, next_attempt_at = NULL {guard}"),
                params![id, attempts, now],
            )?,
            Recorded::Processed,
        ),
        Ok(Handled::Ignored) => (
            tx.execute(
                &format!("UPDATE webhook_events SET status = 'ignored', processed_at = ?3, next_attempt_at = NULL,
                          note = 'the handler had nothing to do for this event type' {guard}"),
                params![id, attempts, now],
            )?,
            Recorded::Ignored,
        ),
        Err(error) => {
            let text: String = error.to_string().chars().take(MAX_ERROR_CHARS).collect();
            let give_up = error.is_permanent() || attempts >= max_attempts.max(1);
            let (status, next, recorded) = if give_up {
                (EventStatus::Failed, None, Recorded::Failed)
            } else {
                let at = now + backoff_ms(attempts);
                (EventStatus::Pending, Some(at), Recorded::Retry(at))
            };
            (
                tx.execute(
                    &format!("UPDATE webhook_events SET status = ?3, next_attempt_at = ?4, last_error = ?5, last_error_at = ?6 {guard}"),
                    params![id, attempts, status, next, text, now],
                )?,
                recorded,
            )
        }
    };
    Ok(if changed == 1 {
        recorded
    } else {
        Recorded::Lost
    })
}
