//! The email outbox: messages are stored with the action that causes them, then a worker delivers them.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rusqlite::{Connection, Transaction, params};
use secrecy::ExposeSecret;
use tokio::sync::Notify;

use crate::clock::{Millis, SharedClock};
use crate::config::Settings;
use crate::db::{Db, DbError};

/// A message ready to be queued.
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn with_link(to: &str, subject: &str, intro: &str, action: &str, link: &str, outro: &str) -> Email {
    Email {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text: format!("Hello,\n\n{intro}\n\n{action}:\n{link}\n\n{outro}\n\n— audiostudio\n"),
        html: format!(
            "<!doctype html><html><body style=\"font-family: sans-serif\"><p>Hello,</p><p>{}</p>\
             <p><a href=\"{}\">{}</a></p><p>{}</p><p>— audiostudio</p></body></html>",
            escape_html(intro),
            escape_html(link),
            escape_html(action),
            escape_html(outro)
        ),
    }
}

/// Links point at the configured public base URL, never at the request's Host header.
pub fn verification(base_url: &str, to: &str, token: &str) -> Email {
    let link = format!(
        "{}/verify-email#token={token}",
        base_url.trim_end_matches('/')
    );
    with_link(
        to,
        "Confirm your email address",
        "Please confirm that this address belongs to your audiostudio account.",
        "Confirm your email",
        &link,
        "If you did not create an account, ignore this message.",
    )
}

pub fn password_reset(base_url: &str, to: &str, token: &str) -> Email {
    let link = format!(
        "{}/reset-password#token={token}",
        base_url.trim_end_matches('/')
    );
    with_link(
        to,
        "Reset your password",
        "Someone asked to reset the password of your audiostudio account. The link works once, for 30 minutes.",
        "Choose a new password",
        &link,
        "If it was not you, ignore this message: your password stays as it is.",
    )
}

/// A renewal payment failed or needs the customer's action.
pub fn payment_problem(base_url: &str, to: &str, invoice_url: Option<&str>) -> Email {
    let link = invoice_url.map_or_else(
        || format!("{}/billing", base_url.trim_end_matches('/')),
        str::to_owned,
    );
    with_link(
        to,
        "Your audiostudio payment did not go through",
        "We could not collect the payment for your subscription. Your plan stays active for now; please update your payment method.",
        "Review the invoice",
        &link,
        "If you already fixed this, ignore this message.",
    )
}

/// Queues a message inside the caller's transaction; it goes out only if that commits.
pub fn enqueue(tx: &Transaction<'_>, email: &Email, now: Millis) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO email_outbox (to_address, subject, text_body, html_body, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![email.to, email.subject, email.text, email.html, now],
    )?;
    Ok(())
}

/// How messages leave the building.
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// No SMTP server configured: messages are written to the log.
    Log,
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Mailer> {
        match &settings.smtp_url {
            None => Ok(Mailer::Log),
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "invalid configuration: SMTP_URL cannot be used: {e}\nfix: use a URL like smtps://user:password@smtp.example.com:465 or smtp://localhost:25"
                        )
                    })?
                    .timeout(Some(Duration::from_secs(30)))
                    .build();
                Ok(Mailer::Smtp(transport))
            }
        }
    }

    pub fn is_development(&self) -> bool {
        matches!(self, Mailer::Log)
    }

    async fn deliver(&self, from: &Mailbox, message: &Queued) -> Result<(), String> {
        match self {
            Mailer::Log => {
                tracing::warn!(
                    target: "audiostudio::mail",
                    to = %message.to,
                    subject = %message.subject,
                    body = %message.text,
                    "development mailer: message not sent, printed here"
                );
                Ok(())
            }
            Mailer::Smtp(transport) => {
                let to: Mailbox = message
                    .to
                    .parse()
                    .map_err(|e| format!("bad recipient: {e}"))?;
                let email = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(&message.subject)
                    .multipart(MultiPart::alternative_plain_html(
                        message.text.clone(),
                        message.html.clone(),
                    ))
                    .map_err(|e| format!("cannot build message: {e}"))?;
                transport
                    .send(email)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

struct Queued {
    id: i64,
    to: String,
    subject: String,
    text: String,
    html: String,
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

/// How long a delivered (or abandoned) message keeps its body. Bodies carry live
/// verification and reset links, which should not sit in the database and its backups.
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

/// Backoff before attempt `n + 1`: 30 s, 1 min, 2 min, ... capped at one hour.
fn backoff_ms(attempts: u32) -> Millis {
    (30_000i64 << attempts.min(7)).min(3_600_000)
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
    for message in batch {
        // The network call happens here, outside any transaction.
        let outcome = mailer.deliver(from, &message).await;
        let now = clock.now_ms();
        let (id, attempts) = (message.id, message.attempts + 1);
        match outcome {
            Ok(()) => {
                db.write(move |tx| {
                    tx.execute(
                        "UPDATE email_outbox SET status = 'sent', attempts = ?2, sent_at = ?3, last_error = NULL WHERE id = ?1",
                        params![id, attempts, now],
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
                        "UPDATE email_outbox SET status = ?2, attempts = ?3, last_error = ?4, next_attempt_at = ?5 WHERE id = ?1",
                        params![id, status, attempts, error, now + backoff_ms(attempts)],
                    )?;
                    Ok::<_, DbError>(())
                })
                .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(1), 60_000);
        assert!(backoff_ms(3) > backoff_ms(2));
        assert_eq!(backoff_ms(30), 3_600_000);
    }

    #[test]
    fn links_use_the_public_base_url_and_html_is_escaped() {
        let email = password_reset("https://audio.example.com/", "a@example.com", "tok");
        assert!(
            email
                .text
                .contains("https://audio.example.com/reset-password#token=tok")
        );
        assert!(
            email
                .html
                .contains("href=\"https://audio.example.com/reset-password#token=tok\"")
        );
    }
}
