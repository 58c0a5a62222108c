//! Email through a real SMTP conversation with a local sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocket::figment::providers::Serialized;
use rocket::http::Status;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::*;

/// A minimal SMTP server that keeps every message it accepts.
#[derive(Clone, Default)]
struct Sink {
    messages: Arc<Mutex<Vec<String>>>,
    /// How many DATA commands to refuse with a temporary error before accepting.
    refuse_first: Arc<Mutex<u32>>,
}

impl Sink {
    async fn start(refuse_first: u32) -> (Sink, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Sink {
            refuse_first: Arc::new(Mutex::new(refuse_first)),
            ..Sink::default()
        };
        let server = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(server.clone().converse(stream));
            }
        });
        (sink, port)
    }

    async fn converse(self, stream: tokio::net::TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink.test ESMTP\r\n").await.unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let command = line.to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
                b"250-sink.test\r\n250 8BITMIME\r\n"
            } else if command.starts_with("DATA") {
                write.write_all(b"354 go ahead\r\n").await.unwrap();
                let mut message = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "." {
                        break;
                    }
                    message.push_str(&line);
                    message.push('\n');
                }
                let refuse = {
                    let mut left = self.refuse_first.lock().unwrap();
                    let refuse = *left > 0;
                    *left = left.saturating_sub(1);
                    refuse
                };
                if refuse {
                    b"451 try again later\r\n"
                } else {
                    self.messages.lock().unwrap().push(message);
                    b"250 queued\r\n"
                }
            } else if command.starts_with("QUIT") {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"250 ok\r\n"
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }

    async fn wait_for(&self, subject: &str) -> String {
        for _ in 0..200 {
            if let Some(m) = self
                .messages
                .lock()
                .unwrap()
                .iter()
                .find(|m| m.contains(subject))
            {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no message with subject {subject:?} reached the sink");
    }
}

/// Undoes quoted-printable: soft line breaks and =XX escapes.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn app_with_smtp(port: u16) -> TestApp {
    spawn_app_with(|f| {
        f.merge(Serialized::global(
            "smtp_url",
            format!("smtp://127.0.0.1:{port}"),
        ))
    })
    .await
}

#[rocket::async_test]
async fn the_reset_link_in_the_delivered_email_resets_the_password() {
    let (sink, port) = Sink::start(0).await;
    let app = app_with_smtp(port).await;
    app.register("ada@example.com").await;
    let verification = sink.wait_for("Subject: Confirm your email address").await;
    assert!(
        verification.contains("To: ada@example.com"),
        "{verification}"
    );

    let reply = app
        .post(
            "/api/auth/request-password-reset",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    assert_eq!(reply.status, Status::Accepted);
    let raw = sink.wait_for("Subject: Reset your password").await;
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(
        raw.contains("text/plain") && raw.contains("text/html"),
        "{raw}"
    );
    let message = decode_quoted_printable(&raw);
    assert!(
        message.contains("https://studio.example.com/reset-password#token="),
        "{message}"
    );
    let token = token_in(&message);

    let reset = app
        .post(
            "/api/auth/reset-password",
            json!({ "token": token, "new_password": "a brand new secret" }),
            None,
        )
        .await;
    assert_eq!(reset.status, Status::Ok, "{}", reset.body);
    assert_eq!(
        app.login("ada@example.com", "a brand new secret")
            .await
            .status,
        Status::Ok
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM email_outbox WHERE status = 'sent'"),
        2
    );
}

#[rocket::async_test]
async fn a_refused_delivery_is_retried_later() {
    let (sink, port) = Sink::start(1).await;
    let app = app_with_smtp(port).await;
    app.register("ada@example.com").await;
    // The first attempt is refused and recorded.
    for _ in 0..200 {
        if app.count("SELECT attempts FROM email_outbox") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, error): (String, String) = app
        .db()
        .query_row("SELECT status, last_error FROM email_outbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(status, "pending");
    assert!(error.contains("451"), "{error}");
    assert!(sink.messages.lock().unwrap().is_empty());

    // After the backoff it goes through.
    app.clock.advance_secs(120);
    app.app().mail_wakeup.notify_one();
    sink.wait_for("Subject: Confirm your email address").await;
    for _ in 0..200 {
        if app.count("SELECT COUNT(*) FROM email_outbox WHERE status = 'sent' AND attempts = 2")
            == 1
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the retried message was not marked sent");
}

/// Waits until the outbox holds no pending message and returns every row's
/// (subject, status, text_body, html_body).
async fn settled_outbox(app: &TestApp) -> Vec<(String, String, String, String)> {
    for _ in 0..200 {
        if app.count("SELECT COUNT(*) FROM email_outbox WHERE status = 'pending'") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let db = app.db();
    let mut stmt = db
        .prepare("SELECT subject, status, text_body, html_body FROM email_outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[rocket::async_test]
async fn a_delivered_reset_email_leaves_no_live_link_in_the_outbox() {
    let (sink, port) = Sink::start(0).await;
    let app = app_with_smtp(port).await;
    app.register("ada@example.com").await;
    sink.wait_for("Subject: Confirm your email address").await;
    let reply = app
        .post(
            "/api/auth/request-password-reset",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    assert_eq!(reply.status, Status::Accepted);
    let token = token_in(&decode_quoted_printable(
        &sink.wait_for("Subject: Reset your password").await,
    ));

    let rows = settled_outbox(&app).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (subject, status, text, html) in &rows {
        assert_eq!(status, "sent", "{subject}");
        assert_eq!((text.as_str(), html.as_str()), ("", ""), "{subject}");
    }
    // The delivered link still works: only the stored copy is gone.
    let reset = app
        .post(
            "/api/auth/reset-password",
            json!({ "token": token, "new_password": "a brand new secret" }),
            None,
        )
        .await;
    assert_eq!(reset.status, Status::Ok, "{}", reset.body);
}

#[rocket::async_test]
async fn an_abandoned_email_leaves_no_live_link_in_the_outbox() {
    let (_sink, port) = Sink::start(u32::MAX).await;
    let app = spawn_app_with(|f| {
        f.merge(Serialized::global(
            "smtp_url",
            format!("smtp://127.0.0.1:{port}"),
        ))
        .merge(Serialized::global("email_max_attempts", 1))
    })
    .await;
    app.register("ada@example.com").await;
    let rows = settled_outbox(&app).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (_, status, text, html) = &rows[0];
    assert_eq!(status, "failed");
    assert_eq!((text.as_str(), html.as_str()), ("", ""));
}
