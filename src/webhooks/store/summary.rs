//! Listings and the status summary an operator reads.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::clock::{Millis, rfc3339};
use crate::webhooks::status::EventStatus;

/// One row of a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventSummary {
    /// Stripe's event id.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = String)]
    pub status: EventStatus,
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
    status: Option<EventStatus>,
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
    fn add(&mut self, status: EventStatus, n: i64) {
        *match status {
            EventStatus::Pending => &mut self.pending,
            EventStatus::Processing => &mut self.processing,
            EventStatus::Processed => &mut self.processed,
            EventStatus::Ignored => &mut self.ignored,
            EventStatus::Failed => &mut self.failed,
        } += n;
        self.total += n;
    }
}

/// The newest error of an event that is not settled yet (pending, processing or failed).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LastError {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = String)]
    pub status: EventStatus,
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
        let (kind, status, n): (String, EventStatus, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        by_status.add(status, n);
        by_type.entry(kind).or_default().add(status, n);
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
