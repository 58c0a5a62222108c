//! The outbox worker: delivers queued messages with retries and backoff, outside any transaction.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use rusqlite::{Connection, params};
use tokio::sync::Notify;

use super::Mailer;
use crate::platform::backoff::backoff_ms;
use crate::platform::clock::{Millis, SharedClock};
use crate::platform::db::{Db, DbError};

pub(super) struct Queued {
    id: i64,
    pub(super) to: String,
    pub(super) subject: String,
    pub(super) text: String,
    pub(super) html: String,
    attempts: u32,
}

fn due(conn: &Connection, now: Millis) -> rusqlite::Result<Vec<Queued>> {
    let mut stmt = conn.prepare(
        "SELECT id, to_address, subject, text_body, html_body, attempts FROM email_outbox
         WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT 20",
    )?;
    stmt.query_map([now], |r| {
        Ok(Queued {
            id: r.get(0)?,
            to: r.get(1)?,
            subject: r.get(2)?,
            text: r.get(3)?,
            html: r.get(4)?,
            attempts: r.get(5)?,
        })
    })?
    .collect()
}

/// How long a message the development mailer printed (or one left from an older version)
/// keeps its body. Over SMTP a body is erased the moment it is delivered or abandoned:
/// bodies carry live verification and reset links, which must not sit in the database and
/// its backups. The development mailer has printed the whole message to the log already,
/// and its outbox is the developer's inbox.
const BODY_RETENTION_MS: Millis = 3600 * 1000;

async fn scrub_old_bodies(db: &Db, now: Millis) -> Result<(), DbError> {
    db.write(move |tx| {
        tx.execute(
            "UPDATE email_outbox SET text_body = '', html_body = ''
             WHERE status IN ('sent', 'failed') AND COALESCE(sent_at, next_attempt_at) < ?1 AND text_body <> ''",
            [now - BODY_RETENTION_MS],
        )?;
        Ok::<_, DbError>(())
    })
    .await
}

/// Delivers queued messages until `stop` fires; wakes early when `wakeup` is notified.
pub async fn run_outbox_worker(
    db: Db,
    mailer: Arc<Mailer>,
    from: Mailbox,
    max_attempts: u32,
    clock: SharedClock,
    wakeup: Arc<Notify>,
    mut stop: rocket::Shutdown,
) {
    let mut last_scrub: Option<std::time::Instant> = None;
    loop {
        if let Err(e) = deliver_due(&db, &mailer, &from, max_attempts, &clock).await {
            tracing::error!(error = %e, "email outbox pass failed");
        }
        if last_scrub.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            last_scrub = Some(std::time::Instant::now());
            if let Err(e) = scrub_old_bodies(&db, clock.now_ms()).await {
                tracing::error!(error = %e, "email outbox scrub failed");
            }
        }
        tokio::select! {
            _ = wakeup.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = &mut stop => break,
        }
    }
}

async fn deliver_due(
    db: &Db,
    mailer: &Mailer,
    from: &Mailbox,
    max_attempts: u32,
    clock: &SharedClock,
) -> Result<(), DbError> {
    let now = clock.now_ms();
    let batch = db.read(move |c| Ok::<_, DbError>(due(c, now)?)).await?;
    // Over SMTP the link leaves with the message: the stored copy goes at once.
    let erase = !mailer.is_development();
    for message in batch {
        // The network call happens here, outside any transaction.
        let outcome = mailer.deliver(from, &message).await;
        let now = clock.now_ms();
        let (id, attempts) = (message.id, message.attempts + 1);
        match outcome {
            Ok(()) => {
                db.write(move |tx| {
                    tx.execute(
                        "UPDATE email_outbox SET status = 'sent', attempts = ?2, sent_at = ?3, last_error = NULL,
                         text_body = CASE WHEN ?4 THEN '' ELSE text_body END,
                         html_body = CASE WHEN ?4 THEN '' ELSE html_body END
                         WHERE id = ?1",
                        params![id, attempts, now, erase],
                    )?;
                    Ok::<_, DbError>(())
                })
                .await?;
            }
            Err(error) => {
                tracing::warn!(email_id = id, attempts, error = %error, "email delivery failed");
                let status = if attempts >= max_attempts {
                    "failed"
                } else {
                    "pending"
                };
                db.write(move |tx| {
                    tx.execute(
                        "UPDATE email_outbox SET status = ?2, attempts = ?3, last_error = ?4, next_attempt_at = ?5,
                         text_body = CASE WHEN ?6 AND ?2 = 'failed' THEN '' ELSE text_body END,
                         html_body = CASE WHEN ?6 AND ?2 = 'failed' THEN '' ELSE html_body END
                         WHERE id = ?1",
                        params![id, status, attempts, error, now + backoff_ms(attempts), erase],
                    )?;
                    Ok::<_, DbError>(())
                })
                .await?;
            }
        }
    }
    Ok(())
}
