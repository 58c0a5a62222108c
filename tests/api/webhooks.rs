//! Stripe webhooks: signature checks (also against Stripe's own library), storage once per event id, the processing worker, admin retry/status and the CLI.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use audiostudio::webhooks::worker::LEASE_MS;
use audiostudio::webhooks::{
    BoxFuture, EventHandler, Handled, HandlerError, StoredEvent, Webhooks,
};
use rocket::figment::Figment;
use rocket::figment::providers::Serialized;
use rocket::http::{ContentType, Header, Status};
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "whsec_test_secret";
/// DESIGN §4: Stripe's libraries give this for secret `whsec_test`, t=1700000000, body `{"id":"evt_1"}`.
const VECTOR: &str = "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925";

/// A handler that records every call and fails or panics on request.
#[derive(Default)]
struct Scripted {
    seen: Mutex<Vec<StoredEvent>>,
    /// Event id → how many more calls fail (`u32::MAX`: all of them).
    failures: Mutex<HashMap<String, u32>>,
}

impl Scripted {
    fn fail(&self, id: &str, times: u32) {
        self.failures.lock().unwrap().insert(id.to_owned(), times);
    }

    fn calls(&self, id: &str) -> Vec<StoredEvent> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.id == id)
            .cloned()
            .collect()
    }
}

impl EventHandler for Scripted {
    fn handle<'a>(
        &'a self,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(event.clone());
            let fail = match self.failures.lock().unwrap().get_mut(&event.id) {
                Some(n) if *n > 0 => {
                    if *n != u32::MAX {
                        *n -= 1;
                    }
                    true
                }
                _ => false,
            };
            if event.event_type == "test.panic" {
                panic!("handler bug on {}", event.id);
            }
            if fail {
                return Err(HandlerError::Retry(anyhow::anyhow!(
                    "stripe unreachable (attempt {})",
                    event.attempts
                )));
            }
            if event.event_type.starts_with("unknown.") {
                Ok(Handled::Ignored)
            } else {
                Ok(Handled::Processed)
            }
        })
    }
}

struct Hooked {
    app: TestApp,
    hooks: Webhooks,
    handler: Arc<Scripted>,
}

/// An app with a webhook secret, a test-mode key and the scripted handler registered
/// (as billing registers its own: a managed `Webhooks`).
async fn spawn_hooked(customize: impl FnOnce(Figment) -> Figment) -> Hooked {
    let handler = Arc::new(Scripted::default());
    let app = spawn_app_handling(
        |f| {
            customize(
                f.merge(Serialized::global("stripe_webhook_secret", SECRET))
                    .merge(Serialized::global("stripe_secret_key", "sk_test_123")),
            )
        },
        Some(handler.clone()),
    )
    .await;
    let hooks = app.client.rocket().state::<Webhooks>().unwrap().clone();
    Hooked {
        app,
        hooks,
        handler,
    }
}

async fn spawn_default() -> Hooked {
    spawn_hooked(|f| f).await
}

/// A Stripe-shaped event.
fn event(id: &str, kind: &str, livemode: bool) -> String {
    json!({
        "id": id,
        "object": "event",
        "type": kind,
        "livemode": livemode,
        "api_version": "2024-06-20",
        "created": 1_700_000_000,
        "data": { "object": { "id": format!("obj_{id}"), "object": "invoice", "amount_paid": 1500 } },
        "pending_webhooks": 1,
    })
    .to_string()
}

/// Stripe's Python library, through tests/webhook_signature.py. Fails (never skips) when
/// the `stripe` package is missing.
fn stripe_python(args: &[&str], body: &str) -> Output {
    use std::io::Write;
    crate::helpers::ensure_python_tools();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_signature.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed to cross-check signatures with Stripe's library");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_ne!(
        output.status.code(),
        Some(3),
        "Stripe's Python library is required by this test: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stripe_header(secret: &str, t: i64, body: &str) -> String {
    let output = stripe_python(&["sign", secret, &t.to_string()], body);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

impl Hooked {
    fn now_secs(&self) -> i64 {
        self.app.clock_now() / 1000
    }

    async fn deliver_raw(&self, body: &str, headers: &[&str]) -> Reply {
        let mut request = self
            .app
            .client
            .post("/api/webhooks/stripe")
            .header(ContentType::JSON)
            .body(body);
        for h in headers {
            request = request.header(Header::new("Stripe-Signature", h.to_string()));
        }
        Reply::from(request.dispatch().await).await
    }

    async fn deliver(&self, body: &str, header: &str) -> Reply {
        self.deliver_raw(body, &[header]).await
    }

    /// Delivers `body` signed now with the configured secret; expects 200.
    async fn send_event(&self, body: &str) -> Reply {
        let reply = self
            .deliver(body, &signed(SECRET, self.now_secs(), body))
            .await;
        assert_eq!(reply.status, Status::Ok, "{}", reply.body);
        reply
    }

    /// Waits for the worker to bring `id` to `status` with `attempts`.
    async fn wait_for(&self, id: &str, status: &str, attempts: u32) -> WebhookEventRow {
        for _ in 0..400 {
            let row = self.app.webhook_event(id);
            if row.status == status && row.attempts == attempts {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "{id} never became {status} after {attempts} attempts: {:?}",
            self.app.webhook_event(id)
        );
    }

    /// Gives a woken worker time to act, for asserting that it did not.
    async fn settle(&self) {
        self.hooks.wake();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    fn count(&self) -> i64 {
        self.app.count("SELECT COUNT(*) FROM webhook_events")
    }

    async fn admin_token(&self) -> String {
        let session = self.app.register("root@example.com").await;
        self.app.promote(session["user"]["id"].as_str().unwrap());
        let admin = self.app.login("root@example.com", PASSWORD).await;
        access(&admin.body).to_owned()
    }
}

// --- signatures ---------------------------------------------------------------------------

#[rocket::async_test]
async fn headers_from_stripes_own_library_are_accepted() {
    // The library agrees with the DESIGN vector, and so does the app's signer.
    assert_eq!(
        stripe_header("whsec_test", 1_700_000_000, r#"{"id":"evt_1"}"#),
        format!("t=1700000000,v1={VECTOR}")
    );
    assert_eq!(
        audiostudio::webhooks::signature::sign("whsec_test", 1_700_000_000, br#"{"id":"evt_1"}"#),
        VECTOR
    );
    assert_eq!(v1("whsec_test", 1_700_000_000, r#"{"id":"evt_1"}"#), VECTOR);

    let hooked = spawn_default().await;
    // Non-ASCII text: the signature covers the raw UTF-8 bytes.
    let body = event("evt_lib", "invoice.paid", false).replace("invoice\"", "invoice – Ünïcode\"");
    let header = stripe_header(SECRET, hooked.now_secs(), &body);
    let reply = hooked.deliver(&body, &header).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body, json!({ "received": true, "duplicate": false }));
    let stored: String = hooked
        .app
        .db()
        .query_row(
            "SELECT payload FROM webhook_events WHERE id = 'evt_lib'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, body, "the raw body is stored byte for byte");

    // And Stripe's library accepts the headers the app's signer produces.
    let ours = audiostudio::webhooks::signature::header(SECRET, hooked.now_secs(), body.as_bytes());
    let check = stripe_python(&["verify", SECRET, &ours, "300"], &body);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[rocket::async_test]
async fn a_tampered_body_or_a_wrong_secret_is_refused_and_nothing_is_stored() {
    let hooked = spawn_default().await;
    let before = hooked.app.snapshot();
    let body = event("evt_t", "invoice.paid", false);
    let now = hooked.now_secs();
    let tampered = body.replace("1500", "150000");
    let reply = hooked.deliver(&tampered, &signed(SECRET, now, &body)).await;
    reply.assert_problem(400);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("no v1 signature matches"),
        "{}",
        reply.body
    );
    hooked
        .deliver(&body, &signed("whsec_wrong", now, &body))
        .await
        .assert_problem(400);
    // The timestamp is signed too: moving it breaks the signature.
    let moved = format!("t={},v1={}", now - 1, v1(SECRET, now, &body));
    hooked.deliver(&body, &moved).await.assert_problem(400);
    hooked.settle().await;
    assert_eq!(hooked.app.snapshot(), before);
    assert!(hooked.handler.seen.lock().unwrap().is_empty());
}

#[rocket::async_test]
async fn during_a_secret_rotation_both_secrets_verify() {
    let hooked = spawn_hooked(|f| {
        f.merge(Serialized::global(
            "stripe_webhook_secret",
            "whsec_old , whsec_new",
        ))
    })
    .await;
    let now = hooked.now_secs();
    let old = event("evt_old", "invoice.paid", false);
    let new = event("evt_new", "invoice.paid", false);
    assert_eq!(
        hooked
            .deliver(&old, &signed("whsec_old", now, &old))
            .await
            .status,
        Status::Ok
    );
    assert_eq!(
        hooked
            .deliver(&new, &signed("whsec_new", now, &new))
            .await
            .status,
        Status::Ok
    );
    let other = event("evt_other", "invoice.paid", false);
    hooked
        .deliver(&other, &signed("whsec_other", now, &other))
        .await
        .assert_problem(400);
    assert_eq!(hooked.count(), 2);
}

#[rocket::async_test]
async fn stale_and_future_timestamps_are_refused() {
    let hooked = spawn_default().await;
    let before = hooked.app.snapshot();
    let body = event("evt_time", "invoice.paid", false);
    let now = hooked.now_secs();
    for t in [now - 301, now + 301, now - 86_400] {
        let reply = hooked.deliver(&body, &signed(SECRET, t, &body)).await;
        reply.assert_problem(400);
        assert!(
            reply.body["detail"].as_str().unwrap().contains("timestamp"),
            "{}",
            reply.body
        );
    }
    assert_eq!(hooked.app.snapshot(), before);
    // Inside the 300 s tolerance, either way, it is fine.
    assert_eq!(
        hooked
            .deliver(&body, &signed(SECRET, now - 299, &body))
            .await
            .status,
        Status::Ok
    );
    let later = event("evt_time2", "invoice.paid", false);
    assert_eq!(
        hooked
            .deliver(&later, &signed(SECRET, now + 299, &later))
            .await
            .status,
        Status::Ok
    );
}

#[rocket::async_test]
async fn any_of_several_v1_values_may_match() {
    let hooked = spawn_default().await;
    let body = event("evt_multi", "invoice.paid", false);
    let now = hooked.now_secs();
    let good = v1(SECRET, now, &body);
    let bogus = v1("whsec_rolled_away", now, &body);
    let header = format!("t={now},v1={bogus},v1=nothex,v1={good},v0={bogus}");
    assert_eq!(hooked.deliver(&body, &header).await.status, Status::Ok);
    let none = event("evt_none", "invoice.paid", false);
    let header = format!("t={now},v1={bogus},v1={}", v1("whsec_x", now, &none));
    hooked.deliver(&none, &header).await.assert_problem(400);
    assert_eq!(hooked.count(), 1);
}

#[rocket::async_test]
async fn missing_malformed_or_unknown_scheme_headers_are_refused() {
    let hooked = spawn_default().await;
    let before = hooked.app.snapshot();
    let body = event("evt_h", "invoice.paid", false);
    let now = hooked.now_secs();
    let good = signed(SECRET, now, &body);
    let missing = hooked.deliver_raw(&body, &[]).await;
    missing.assert_problem(400);
    assert!(missing.body["detail"].as_str().unwrap().contains("missing"));
    // Only an unknown scheme, even carrying the right value.
    let v0 = format!("t={now},v0={}", v1(SECRET, now, &body));
    let reply = hooked.deliver(&body, &v0).await;
    reply.assert_problem(400);
    assert!(reply.body["detail"].as_str().unwrap().contains("no v1"));
    for header in [
        format!("v1={}", v1(SECRET, now, &body)),
        format!("t=soon,v1={}", v1(SECRET, now, &body)),
        "garbage".to_owned(),
        String::new(),
    ] {
        hooked.deliver(&body, &header).await.assert_problem(400);
    }
    // Two headers are ambiguous.
    hooked
        .deliver_raw(&body, &[&good, &good])
        .await
        .assert_problem(400);
    hooked.settle().await;
    assert_eq!(hooked.app.snapshot(), before);
}

#[rocket::async_test]
async fn large_events_are_read_whole_and_oversized_ones_get_413() {
    let hooked = spawn_default().await;
    let before = hooked.app.snapshot();
    let big = |id: &str, size: usize| {
        json!({
            "id": id, "type": "invoice.paid", "livemode": false,
            "data": { "object": { "id": "in_big", "lines": "x".repeat(size) } },
        })
        .to_string()
    };
    let now = hooked.now_secs();
    let huge = big("evt_huge", 2 * 1024 * 1024);
    let reply = hooked.deliver(&huge, &signed(SECRET, now, &huge)).await;
    reply.assert_problem(413);
    assert_eq!(hooked.app.snapshot(), before);
    // Far over Rocket's 8 KiB default, under the 1 MiB cap.
    let large = big("evt_large", 200 * 1024);
    let reply = hooked.deliver(&large, &signed(SECRET, now, &large)).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    hooked.wait_for("evt_large", "processed", 1).await;
}

#[rocket::async_test]
async fn a_redelivered_event_is_stored_and_handled_once() {
    let hooked = spawn_default().await;
    let body = event("evt_dup", "invoice.paid", false);
    let first = hooked.send_event(&body).await;
    assert_eq!(first.body["duplicate"], false);
    hooked.wait_for("evt_dup", "processed", 1).await;
    // Stripe retries with a fresh timestamp and signature.
    hooked.app.clock.advance_secs(3600);
    for _ in 0..3 {
        let again = hooked.send_event(&body).await;
        assert_eq!(again.body, json!({ "received": true, "duplicate": true }));
    }
    hooked.settle().await;
    assert_eq!(hooked.count(), 1);
    assert_eq!(hooked.handler.calls("evt_dup").len(), 1);
    assert_eq!(hooked.app.webhook_event("evt_dup").status, "processed");
}

#[rocket::async_test]
async fn events_of_the_other_mode_are_stored_as_ignored_unless_allowed() {
    let hooked =
        spawn_hooked(|f| f.merge(Serialized::global("stripe_secret_key", "sk_live_abc"))).await;
    hooked
        .send_event(&event("evt_testmode", "invoice.paid", false))
        .await;
    hooked
        .send_event(&event("evt_livemode", "invoice.paid", true))
        .await;
    hooked.wait_for("evt_livemode", "processed", 1).await;
    hooked.settle().await;
    let ignored = hooked.app.webhook_event("evt_testmode");
    assert_eq!(ignored.status, "ignored");
    assert_eq!(ignored.attempts, 0);
    assert!(ignored.note.unwrap().contains("test mode event"));
    assert!(hooked.handler.calls("evt_testmode").is_empty());

    let allowing = spawn_hooked(|f| {
        f.merge(Serialized::global("stripe_secret_key", "sk_live_abc"))
            .merge(Serialized::global("stripe_accept_other_mode", true))
    })
    .await;
    allowing
        .send_event(&event("evt_testmode", "invoice.paid", false))
        .await;
    allowing.wait_for("evt_testmode", "processed", 1).await;
}

#[rocket::async_test]
async fn without_a_webhook_secret_the_intake_answers_503() {
    let app = spawn_app().await;
    let before = app.snapshot();
    let body = event("evt_nc", "invoice.paid", false);
    let now = app.clock_now() / 1000;
    let reply = Reply::from(
        app.client
            .post("/api/webhooks/stripe")
            .header(ContentType::JSON)
            .header(Header::new("Stripe-Signature", signed(SECRET, now, &body)))
            .body(&body)
            .dispatch()
            .await,
    )
    .await;
    reply.assert_problem(503);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("billing not configured")
    );
    assert_eq!(app.snapshot(), before);
}

#[rocket::async_test]
async fn signed_bodies_that_are_not_stripe_events_are_refused() {
    let hooked = spawn_default().await;
    let before = hooked.app.snapshot();
    let now = hooked.now_secs();
    for body in [
        "not json".to_owned(),
        "[1,2]".to_owned(),
        r#"{"id":"evt_x","livemode":false,"data":{"object":{}}}"#.to_owned(),
        r#"{"id":"evt_x","type":"invoice.paid","data":{"object":{}}}"#.to_owned(),
        r#"{"id":"evt_x","type":"invoice.paid","livemode":false}"#.to_owned(),
        r#"{"id":42,"type":"invoice.paid","livemode":false,"data":{"object":{}}}"#.to_owned(),
    ] {
        let reply = hooked.deliver(&body, &signed(SECRET, now, &body)).await;
        reply.assert_problem(400);
    }
    assert_eq!(hooked.app.snapshot(), before);
}

// --- the worker ---------------------------------------------------------------------------

#[rocket::async_test]
async fn the_handler_gets_the_stored_event() {
    let hooked = spawn_default().await;
    let body = event("evt_p", "invoice.paid", false);
    hooked.send_event(&body).await;
    let row = hooked.wait_for("evt_p", "processed", 1).await;
    assert_eq!(row.processed_at, Some(hooked.app.clock_now()));
    assert_eq!(row.next_attempt_at, None);
    let calls = hooked.handler.calls("evt_p");
    assert_eq!(calls.len(), 1);
    let seen = &calls[0];
    assert_eq!(seen.event_type, "invoice.paid");
    assert_eq!(seen.object_id.as_deref(), Some("obj_evt_p"));
    assert_eq!(seen.api_version.as_deref(), Some("2024-06-20"));
    assert!(!seen.livemode);
    assert_eq!(seen.attempts, 1);
    assert_eq!(seen.payload, serde_json::from_str::<Value>(&body).unwrap());
    // Types the handler does not know end as ignored.
    hooked
        .send_event(&event("evt_u", "unknown.thing", false))
        .await;
    let row = hooked.wait_for("evt_u", "ignored", 1).await;
    assert!(row.note.is_some());
}

#[rocket::async_test]
async fn event_types_billing_does_not_handle_are_ignored() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("stripe_webhook_secret", SECRET))).await;
    let body = event("evt_plain", "customer.created", false);
    let now = app.clock_now() / 1000;
    let reply = Reply::from(
        app.client
            .post("/api/webhooks/stripe")
            .header(Header::new("Stripe-Signature", signed(SECRET, now, &body)))
            .body(&body)
            .dispatch()
            .await,
    )
    .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    for _ in 0..400 {
        let status: String = app
            .db()
            .query_row("SELECT status FROM webhook_events", [], |r| r.get(0))
            .unwrap();
        if status == "ignored" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the worker never marked the event ignored");
}

#[rocket::async_test]
async fn a_failing_event_is_retried_with_backoff_until_it_succeeds() {
    let hooked = spawn_default().await;
    hooked.handler.fail("evt_r", 2);
    hooked
        .send_event(&event("evt_r", "invoice.paid", false))
        .await;
    let row = hooked.wait_for("evt_r", "pending", 1).await;
    assert!(
        row.last_error
            .unwrap()
            .contains("stripe unreachable (attempt 1)")
    );
    let delay = row.next_attempt_at.unwrap() - hooked.app.clock_now();
    assert!(
        (30_000..=36_000).contains(&delay),
        "first backoff {delay} ms"
    );

    // Not due yet: nothing happens.
    hooked.app.clock.advance_secs(29);
    hooked.settle().await;
    assert_eq!(hooked.app.webhook_event("evt_r").attempts, 1);

    hooked.app.clock.advance_secs(8);
    hooked.hooks.wake();
    let row = hooked.wait_for("evt_r", "pending", 2).await;
    let delay = row.next_attempt_at.unwrap() - hooked.app.clock_now();
    assert!(
        (60_000..=72_000).contains(&delay),
        "second backoff {delay} ms"
    );

    hooked.app.clock.advance_secs(73);
    hooked.hooks.wake();
    let row = hooked.wait_for("evt_r", "processed", 3).await;
    assert!(row.processed_at.is_some());
    let attempts: Vec<u32> = hooked
        .handler
        .calls("evt_r")
        .iter()
        .map(|e| e.attempts)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
}

#[rocket::async_test]
async fn an_event_fails_for_good_after_the_maximum_attempts() {
    let hooked = spawn_hooked(|f| f.merge(Serialized::global("webhook_max_attempts", 3))).await;
    hooked.handler.fail("evt_f", u32::MAX);
    hooked
        .send_event(&event("evt_f", "invoice.paid", false))
        .await;
    hooked.wait_for("evt_f", "pending", 1).await;
    for attempt in 2..=3 {
        hooked.app.clock.advance_secs(3600);
        hooked.hooks.wake();
        let status = if attempt == 3 { "failed" } else { "pending" };
        hooked.wait_for("evt_f", status, attempt).await;
    }
    let row = hooked.app.webhook_event("evt_f");
    assert_eq!(row.next_attempt_at, None);
    assert!(row.last_error.unwrap().contains("attempt 3"));
    // Failed stays failed.
    hooked.app.clock.advance_secs(86_400);
    hooked.settle().await;
    assert_eq!(hooked.handler.calls("evt_f").len(), 3);
}

#[rocket::async_test]
async fn a_failing_or_panicking_event_does_not_block_the_others() {
    let hooked = spawn_default().await;
    hooked.handler.fail("evt_bad", u32::MAX);
    hooked
        .send_event(&event("evt_bad", "invoice.paid", false))
        .await;
    hooked
        .send_event(&event("evt_bug", "test.panic", false))
        .await;
    hooked
        .send_event(&event("evt_good", "invoice.paid", false))
        .await;
    hooked.wait_for("evt_good", "processed", 1).await;
    let bad = hooked.wait_for("evt_bad", "pending", 1).await;
    assert!(bad.last_error.unwrap().contains("stripe unreachable"));
    let bug = hooked.wait_for("evt_bug", "pending", 1).await;
    assert!(
        bug.last_error.as_deref().unwrap().contains("panicked"),
        "{bug:?}"
    );
    // The worker is still alive after the panic.
    hooked
        .send_event(&event("evt_after", "invoice.paid", false))
        .await;
    hooked.wait_for("evt_after", "processed", 1).await;
}

#[rocket::async_test]
async fn an_event_left_processing_by_a_crash_is_picked_up_after_its_lease() {
    let hooked = spawn_default().await;
    let now = hooked.app.clock_now();
    // As a worker that died mid-way leaves them: claimed, leased, never settled.
    let db = hooked.app.db();
    for (id, attempts) in [("evt_crash", 1), ("evt_crash_loop", 8)] {
        db.execute(
            "INSERT INTO webhook_events (id, event_type, payload, status, attempts, next_attempt_at, received_at)
             VALUES (?1, 'invoice.paid', ?2, 'processing', ?3, ?4, ?5)",
            rusqlite::params![id, event(id, "invoice.paid", false), attempts, now + LEASE_MS, now],
        )
        .unwrap();
    }
    hooked.settle().await;
    assert_eq!(hooked.app.webhook_event("evt_crash").status, "processing");

    hooked.app.clock.advance_secs(LEASE_MS / 1000 + 1);
    hooked.hooks.wake();
    hooked.wait_for("evt_crash", "processed", 2).await;
    // One that kept dying has used its attempts: failed, with the reason.
    let looped = hooked.wait_for("evt_crash_loop", "failed", 8).await;
    assert!(looped.last_error.unwrap().contains("did not finish"));
    assert!(hooked.handler.calls("evt_crash_loop").is_empty());
}

// --- admin ----------------------------------------------------------------------------------

#[rocket::async_test]
async fn admins_see_the_status_and_requeue_events() {
    let hooked = spawn_hooked(|f| f.merge(Serialized::global("webhook_max_attempts", 1))).await;
    let admin = hooked.admin_token().await;
    hooked.handler.fail("evt_fail", 1);
    hooked
        .send_event(&event("evt_ok", "invoice.paid", false))
        .await;
    hooked
        .send_event(&event("evt_unknown", "unknown.thing", false))
        .await;
    hooked
        .send_event(&event("evt_fail", "invoice.paid", false))
        .await;
    hooked.wait_for("evt_ok", "processed", 1).await;
    hooked.wait_for("evt_unknown", "ignored", 1).await;
    hooked.wait_for("evt_fail", "failed", 1).await;
    hooked
        .send_event(&event("evt_later", "customer.subscription.updated", false))
        .await;
    hooked.wait_for("evt_later", "processed", 1).await;

    let status = hooked.app.get("/api/webhooks/status", Some(&admin)).await;
    assert_eq!(status.status, Status::Ok, "{}", status.body);
    let s = &status.body;
    assert_eq!(
        s["by_status"],
        json!({ "pending": 0, "processing": 0, "processed": 2, "ignored": 1, "failed": 1, "total": 4 })
    );
    assert_eq!(s["by_type"]["invoice.paid"]["processed"], 1);
    assert_eq!(s["by_type"]["invoice.paid"]["failed"], 1);
    assert_eq!(s["by_type"]["invoice.paid"]["total"], 2);
    assert_eq!(s["by_type"]["unknown.thing"]["ignored"], 1);
    assert!(s["last_received_at"].is_string());
    assert_eq!(s["oldest_pending_age_secs"], Value::Null);
    assert_eq!(s["last_error"]["event_id"], "evt_fail");
    assert_eq!(s["last_error"]["type"], "invoice.paid");
    assert!(
        s["last_error"]["error"]
            .as_str()
            .unwrap()
            .contains("stripe unreachable")
    );

    // Only failed or ignored events can be requeued.
    let retry = |body: Value| {
        let admin = admin.clone();
        let hooked = &hooked;
        async move {
            hooked
                .app
                .post("/api/webhooks/retry", body, Some(&admin))
                .await
        }
    };
    retry(json!({ "event_id": "evt_ok" }))
        .await
        .assert_problem(409);
    retry(json!({ "event_id": "evt_nope" }))
        .await
        .assert_problem(404);
    retry(json!({ "event": "evt_ok" }))
        .await
        .assert_problem(422);
    retry(json!({ "event_id": "" })).await.assert_problem(422);
    hooked
        .app
        .send(
            "POST",
            "/api/webhooks/retry",
            Some("{nope"),
            Some(&admin),
            None,
        )
        .await
        .assert_problem(400);

    // One ignored event: processed again, ignored again by this handler.
    let one = retry(json!({ "event_id": "evt_unknown" })).await;
    assert_eq!(one.body, json!({ "requeued": 1 }));
    hooked.wait_for("evt_unknown", "ignored", 1).await;
    assert_eq!(hooked.handler.calls("evt_unknown").len(), 2);

    // Every failed event, with an empty body; attempts start again from 0.
    let reply = hooked
        .app
        .send("POST", "/api/webhooks/retry", None, Some(&admin), None)
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body, json!({ "requeued": 1 }));
    hooked.wait_for("evt_fail", "processed", 1).await;
    let again = retry(json!({})).await;
    assert_eq!(again.body, json!({ "requeued": 0 }));

    let actions = hooked.app.audit_actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "webhooks.retry").count(),
        3,
        "{actions:?}"
    );
    let status = hooked.app.get("/api/webhooks/status", Some(&admin)).await;
    assert_eq!(status.body["by_status"]["failed"], 0);
    assert_eq!(status.body["last_error"], Value::Null);
}

#[rocket::async_test]
async fn the_status_shows_the_age_of_the_oldest_pending_event() {
    let hooked = spawn_default().await;
    let admin = hooked.admin_token().await;
    hooked.handler.fail("evt_slow", u32::MAX);
    hooked
        .send_event(&event("evt_slow", "invoice.paid", false))
        .await;
    hooked.wait_for("evt_slow", "pending", 1).await;
    hooked.app.clock.advance_secs(20);
    let status = hooked.app.get("/api/webhooks/status", Some(&admin)).await;
    assert_eq!(status.body["oldest_pending_age_secs"], 20);
    assert_eq!(status.body["by_status"]["pending"], 1);
    assert_eq!(status.body["last_error"]["status"], "pending");
}

#[rocket::async_test]
async fn users_cannot_see_or_requeue_webhooks() {
    let hooked = spawn_default().await;
    let user = hooked.app.register("ada@example.com").await;
    let token = access(&user).to_owned();
    hooked
        .app
        .get("/api/webhooks/status", Some(&token))
        .await
        .assert_problem(403);
    hooked
        .app
        .post("/api/webhooks/retry", json!({}), Some(&token))
        .await
        .assert_problem(403);
    hooked
        .app
        .get("/api/webhooks/status", None)
        .await
        .assert_problem(401);
    hooked
        .app
        .post("/api/webhooks/retry", json!({}), None)
        .await
        .assert_problem(401);
}

// --- the CLI --------------------------------------------------------------------------------

/// `audiostudio webhooks ...` on the test's database while the app runs.
fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = audiostudio_command(dir)
        .arg("webhooks")
        .args(args)
        .output()
        .expect("run the audiostudio binary");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[rocket::async_test]
async fn the_cli_lists_and_replays_events() {
    let hooked = spawn_hooked(|f| f.merge(Serialized::global("webhook_max_attempts", 1))).await;
    let dir = hooked.app.dir.path().to_owned();
    hooked.handler.fail("evt_cli_fail", 1);
    hooked
        .send_event(&event("evt_cli_fail", "invoice.paid", false))
        .await;
    hooked
        .send_event(&event("evt_cli_unknown", "unknown.thing", false))
        .await;
    hooked
        .send_event(&event("evt_cli_ok", "invoice.paid", false))
        .await;
    hooked.wait_for("evt_cli_fail", "failed", 1).await;
    hooked.wait_for("evt_cli_unknown", "ignored", 1).await;
    hooked.wait_for("evt_cli_ok", "processed", 1).await;

    let (ok, out, err) = cli(&dir, &["list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let failed = lines
        .iter()
        .find(|l| l.starts_with("evt_cli_fail "))
        .unwrap();
    for part in [
        "invoice.paid",
        "failed",
        "attempts=1",
        "last error: stripe unreachable",
    ] {
        assert!(failed.contains(part), "{failed}");
    }
    let (ok, out, _) = cli(&dir, &["list", "--status", "failed"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 1, "{out}");
    let (ok, out, _) = cli(&dir, &["list", "--limit", "2"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 2, "{out}");
    let (ok, _, err) = cli(&dir, &["list", "--status", "weird"]);
    assert!(!ok && err.contains("weird"), "{err}");

    // Refused: no target, a processed event, an unknown id.
    assert!(!cli(&dir, &["replay"]).0);
    let (ok, _, err) = cli(&dir, &["replay", "evt_cli_ok"]);
    assert!(!ok && err.contains("processed"), "{err}");
    let (ok, _, err) = cli(&dir, &["replay", "evt_missing"]);
    assert!(!ok && err.contains("no webhook event"), "{err}");

    let (ok, out, err) = cli(&dir, &["replay", "--failed"]);
    assert!(ok, "{err}");
    assert!(out.contains("requeued 1"), "{out}");
    let (ok, out, _) = cli(&dir, &["replay", "evt_cli_unknown"]);
    assert!(ok && out.contains("requeued 1"), "{out}");
    assert_eq!(hooked.app.webhook_event("evt_cli_fail").status, "pending");

    // The running server's worker picks them up (the CLI stamps them with the wall clock).
    hooked.app.clock.advance_secs(600);
    hooked.hooks.wake();
    hooked.wait_for("evt_cli_fail", "processed", 1).await;
    hooked.wait_for("evt_cli_unknown", "ignored", 1).await;
    let cli_audits = hooked.app.count(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'webhooks.retry' AND user_agent = 'audiostudio-cli'",
    );
    assert_eq!(cli_audits, 2);
    let (ok, out, err) = cli(&dir, &["replay", "--failed"]);
    assert!(ok && out.contains("requeued 0"), "{out}{err}");
}
