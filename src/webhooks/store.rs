//! The `webhook_events` table: intake, claims with a lease, outcomes with backoff, requeues, listings and the status summary.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{Handled, HandlerError, StoredEvent};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::backoff::backoff_ms;
use crate::platform::clock::{Millis, rfc3339};

/// Every status an event can have.
pub const STATUSES: [&str; 5] = ["pending", "processing", "processed", "ignored", "failed"];

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
        None => ("pending", Some(now), None),
        Some(_) => ("ignored", None, Some(now)),
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
        let due: Option<(String, String, u32)> = tx
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
        if status == "processing" && attempts >= max_attempts.max(1) {
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
        if status == "processing" {
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
                ("failed", None, Recorded::Failed)
            } else {
                let at = now + backoff_ms(attempts);
                ("pending", Some(at), Recorded::Retry(at))
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

/// Which events a requeue is about.
#[derive(Debug, Clone, Copy)]
pub enum Requeue<'a> {
    /// One event, if it is `failed` or `ignored`.
    One(&'a str),
    /// Every `failed` event.
    AllFailed,
}

#[derive(Debug, thiserror::Error)]
pub enum RequeueError {
    #[error("no webhook event {0}")]
    NotFound(String),
    #[error("webhook event {id} is {status}; only failed or ignored events can be requeued")]
    NotRetryable { id: String, status: String },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Db(#[from] crate::platform::db::DbError),
}

/// Puts events back to `pending`, due now, with their attempts reset to 0 so they get the
/// full `webhook_max_attempts` again (their last error stays visible until the next
/// attempt). Audited as `webhooks.retry` in the same transaction. Returns how many.
pub fn requeue(
    tx: &Transaction<'_>,
    target: Requeue<'_>,
    actor: &Actor,
    now: Millis,
) -> Result<usize, RequeueError> {
    let (ids, event) = match target {
        Requeue::One(id) => {
            let status: String = tx
                .query_row(
                    "SELECT status FROM webhook_events WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| RequeueError::NotFound(id.to_owned()))?;
            if status != "failed" && status != "ignored" {
                return Err(RequeueError::NotRetryable {
                    id: id.to_owned(),
                    status,
                });
            }
            tx.execute(
                "UPDATE webhook_events SET status = 'pending', attempts = 0, next_attempt_at = ?2, processed_at = NULL
                 WHERE id = ?1",
                params![id, now],
            )?;
            let event = Event::new("webhooks.retry")
                .target("webhook_event", id)
                .details(json!({ "event_id": id, "previous_status": status, "requeued": 1 }));
            (vec![id.to_owned()], event)
        }
        Requeue::AllFailed => {
            let ids: Vec<String> = tx
                .prepare(
                    "UPDATE webhook_events SET status = 'pending', attempts = 0, next_attempt_at = ?1, processed_at = NULL
                     WHERE status = 'failed' RETURNING id",
                )?
                .query_map([now], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let shown: Vec<&String> = ids.iter().take(100).collect();
            let event = Event::new("webhooks.retry").details(json!({
                "scope": "all failed",
                "requeued": ids.len(),
                "event_ids": shown,
            }));
            (ids, event)
        }
    };
    audit::record(tx, now, actor, event)?;
    Ok(ids.len())
}

/// One row of a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventSummary {
    /// Stripe's event id.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: String,
    pub attempts: u32,
    pub livemode: bool,
    pub object_id: Option<String>,
    pub last_error: Option<String>,
    /// Why the event was ignored.
    pub note: Option<String>,
    /// RFC 3339.
    pub received_at: String,
    pub processed_at: Option<String>,
    /// When the next attempt is due (pending), or the claim lapses (processing).
    pub next_attempt_at: Option<String>,
}

/// Events newest first, optionally of one status.
pub fn list(
    conn: &Connection,
    status: Option<&str>,
    limit: u32,
) -> rusqlite::Result<Vec<EventSummary>> {
    let mut stmt = conn.prepare(
        "SELECT id, event_type, status, attempts, livemode, object_id, last_error, note,
                received_at, processed_at, next_attempt_at
         FROM webhook_events WHERE ?1 IS NULL OR status = ?1
         ORDER BY received_at DESC, id DESC LIMIT ?2",
    )?;
    stmt.query_map(params![status, limit], |r| {
        Ok(EventSummary {
            id: r.get(0)?,
            event_type: r.get(1)?,
            status: r.get(2)?,
            attempts: r.get(3)?,
            livemode: r.get(4)?,
            object_id: r.get(5)?,
            last_error: r.get(6)?,
            note: r.get(7)?,
            received_at: rfc3339(r.get(8)?),
            processed_at: r.get::<_, Option<Millis>>(9)?.map(rfc3339),
            next_attempt_at: r.get::<_, Option<Millis>>(10)?.map(rfc3339),
        })
    })?
    .collect()
}

/// How many events have each status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusCounts {
    pub pending: i64,
    pub processing: i64,
    pub processed: i64,
    pub ignored: i64,
    pub failed: i64,
    pub total: i64,
}

impl StatusCounts {
    fn add(&mut self, status: &str, n: i64) {
        match status {
            "pending" => self.pending += n,
            "processing" => self.processing += n,
            "processed" => self.processed += n,
            "ignored" => self.ignored += n,
            "failed" => self.failed += n,
            _ => return,
        }
        self.total += n;
    }
}

/// The newest error of an event that is not settled yet (pending, processing or failed).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LastError {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: String,
    pub attempts: u32,
    pub error: String,
    /// RFC 3339.
    pub at: String,
}

/// What an operator wants to know at a glance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookStatus {
    pub by_status: StatusCounts,
    /// Event type → counts by status.
    pub by_type: BTreeMap<String, StatusCounts>,
    /// RFC 3339; absent when no event was ever received.
    pub last_received_at: Option<String>,
    /// Age of the oldest event not yet settled (pending or processing); absent when none.
    pub oldest_pending_age_secs: Option<i64>,
    pub last_error: Option<LastError>,
}

pub fn status(conn: &Connection, now: Millis) -> rusqlite::Result<WebhookStatus> {
    let mut by_status = StatusCounts::default();
    let mut by_type: BTreeMap<String, StatusCounts> = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT event_type, status, COUNT(*) FROM webhook_events GROUP BY event_type, status",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (kind, status, n): (String, String, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        by_status.add(&status, n);
        by_type.entry(kind).or_default().add(&status, n);
    }
    let last_received: Option<Millis> =
        conn.query_row("SELECT MAX(received_at) FROM webhook_events", [], |r| {
            r.get(0)
        })?;
    let oldest_pending: Option<Millis> = conn.query_row(
        "SELECT MIN(received_at) FROM webhook_events WHERE status IN ('pending', 'processing')",
        [],
        |r| r.get(0),
    )?;
    let last_error = conn
        .query_row(
            "SELECT id, event_type, status, attempts, last_error, last_error_at FROM webhook_events
             WHERE status IN ('pending', 'processing', 'failed') AND last_error IS NOT NULL
             ORDER BY last_error_at DESC, id DESC LIMIT 1",
            [],
            |r| {
                Ok(LastError {
                    event_id: r.get(0)?,
                    event_type: r.get(1)?,
                    status: r.get(2)?,
                    attempts: r.get(3)?,
                    error: r.get(4)?,
                    at: r
                        .get::<_, Option<Millis>>(5)?
                        .map(rfc3339)
                        .unwrap_or_default(),
                })
            },
        )
        .optional()?;
    Ok(WebhookStatus {
        by_status,
        by_type,
        last_received_at: last_received.map(rfc3339),
        oldest_pending_age_secs: oldest_pending.map(|t| (now - t).max(0) / 1000),
        last_error,
    })
}
