//! Outgoing email: messages are queued in the transaction that causes them (`enqueue`),
//! then the outbox worker delivers them through the `Mailer`.

mod outbox;

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rusqlite::{Transaction, params};
use secrecy::ExposeSecret;

use crate::platform::clock::Millis;
use crate::platform::config::Settings;

pub use outbox::run_outbox_worker;

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

impl Email {
    /// A short message around one link, in plain text and HTML (escaped).
    pub fn with_link(
        to: &str,
        subject: &str,
        intro: &str,
        action: &str,
        link: &str,
        outro: &str,
    ) -> Email {
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
        match &settings.secrets.smtp_url {
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

    async fn deliver(&self, from: &Mailbox, message: &outbox::Queued) -> Result<(), String> {
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
