//! Stored Stripe webhook events as the console browses them.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::http::pagination::Cursor;
use crate::platform::clock::{Millis, rfc3339};

/// One stored event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventRow {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// pending, processing, processed, ignored or failed.
    pub status: String,
    /// `data.object.id`: the subscription, invoice, charge, ...
    pub object_id: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Why an ignored event was ignored.
    pub note: Option<String>,
    pub livemode: bool,
    pub received_at: String,
    pub processed_at: Option<String>,
    pub next_attempt_at: Option<String>,
    /// The user whose Stripe customer the event's object belongs to, if known.
    pub user_id: Option<String>,
    #[serde(skip)]
    received_ms: Millis,
}

/// One event with its payload.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventRow,
    /// The event exactly as Stripe sent it.
    #[schema(value_type = Object)]
    pub payload: Value,
    pub last_error_at: Option<String>,
    pub api_version: Option<String>,
}

/// Where the list continues: `<received_at ms>_<event id>`.
#[derive(Debug, Clone)]
pub struct EventCursor {
    received_ms: Millis,
    id: String,
}

impl Cursor for EventCursor {
    fn parse(text: &str) -> Option<EventCursor> {
        let (at, id) = text.split_once('_')?;
        let received_ms = at.parse().ok().filter(|t: &Millis| *t >= 0)?;
        (!id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_graphic())).then(|| {
            EventCursor {
                received_ms,
                id: id.to_owned(),
            }
        })
    }
    fn render(&self) -> String {
        format!("{}_{}", self.received_ms, self.id)
    }
}

impl EventRow {
    pub fn cursor(&self) -> EventCursor {
        EventCursor {
            received_ms: self.received_ms,
            id: self.id.clone(),
        }
    }
}

/// The filters of the list; `None` does not filter.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub status: Option<String>,
    pub event_type: Option<String>,
    pub object_id: Option<String>,
}

const ROW: &str = "SELECT w.id, w.event_type, w.status, w.object_id, w.attempts, w.last_error, w.note,
        w.livemode, w.received_at, w.processed_at, w.next_attempt_at,
        (SELECT u.id FROM users u WHERE u.stripe_customer_id = json_extract(w.payload, '$.data.object.customer')),
        w.payload, w.last_error_at, w.api_version
    FROM webhook_events w";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    let received_ms: Millis = r.get(8)?;
    Ok(EventRow {
        id: r.get(0)?,
        event_type: r.get(1)?,
        status: r.get(2)?,
        object_id: r.get(3)?,
        attempts: r.get(4)?,
        last_error: r.get(5)?,
        note: r.get(6)?,
        livemode: r.get(7)?,
        received_at: rfc3339(received_ms),
        processed_at: r.get::<_, Option<Millis>>(9)?.map(rfc3339),
        next_attempt_at: r.get::<_, Option<Millis>>(10)?.map(rfc3339),
        user_id: r.get(11)?,
        received_ms,
    })
}

/// One page of events, newest first.
pub fn page(
    conn: &Connection,
    filter: &EventFilter,
    before: Option<&EventCursor>,
    limit: u32,
) -> rusqlite::Result<Vec<EventRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{ROW} WHERE (?1 IS NULL OR w.status = ?1) AND (?2 IS NULL OR w.event_type = ?2)
           AND (?3 IS NULL OR w.object_id = ?3)
           AND (?4 IS NULL OR w.received_at < ?4 OR (w.received_at = ?4 AND w.id < ?5))
         ORDER BY w.received_at DESC, w.id DESC LIMIT ?6"
    ))?;
    let (at, id) = before.map(|c| (c.received_ms, c.id.as_str())).unzip();
    stmt.query_map(
        params![
            filter.status,
            filter.event_type,
            filter.object_id,
            at,
            id,
            limit
        ],
        row,
    )?
    .collect()
}

/// One event with its payload.
pub fn one(conn: &Connection, id: &str) -> rusqlite::Result<Option<EventDetail>> {
    conn.query_row(&format!("{ROW} WHERE w.id = ?1"), [id], |r| {
        let payload: String = r.get(12)?;
        Ok(EventDetail {
            event: row(r)?,
            payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
            last_error_at: r.get::<_, Option<Millis>>(13)?.map(rfc3339),
            api_version: r.get(14)?,
        })
    })
    .optional()
}
