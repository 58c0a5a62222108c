//! Requeues: an operator puts a failed or ignored event (or every failed one) back to `pending`, audited.

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::json;

use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::webhooks::status::EventStatus;

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
    NotRetryable { id: String, status: EventStatus },
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
            let status: EventStatus = tx
                .query_row(
                    "SELECT status FROM webhook_events WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| RequeueError::NotFound(id.to_owned()))?;
            if !status.is_requeueable() {
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
