//! `/metrics`: parsed by Prometheus' own Python parser, every documented family present
//! with its type, counters moving with requests, the optional bearer token.
//!
//! The recorder is process-wide and other tests run beside these: assertions are on
//! deltas, and on a token feature only these tests spend on.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use audiostudio::tokens::ledger::{self, Grant, Source};
use rocket::figment::providers::Serialized;
use serde_json::{Value, json};

use crate::helpers::*;

/// Only these tests spend on this feature, so its counter moves only with them.
const FEATURE: &str = "metrics_probe";

const TOKEN: &str = "metrics-scrape-token-0123456789";

/// A sample: metric name, labels, value.
type Sample = (String, HashMap<String, String>, f64);

/// The families of an exposition as `prometheus_client` parses it: name -> (type, samples).
fn parse(text: &str) -> HashMap<String, (String, Vec<Sample>)> {
    ensure_python_tools();
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {f.name: [f.type, [[s.name, s.labels, s.value] for s in f.samples]]\n\
               for f in text_string_to_metric_families(sys.stdin.read())}\n\
        print(json.dumps(out))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the exposition does not parse: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of `sample` whose labels include all of `labels` (0 when absent).
fn value(
    families: &HashMap<String, (String, Vec<Sample>)>,
    family: &str,
    sample: &str,
    labels: &[(&str, &str)],
) -> f64 {
    families.get(family).map_or(0.0, |(_, samples)| {
        samples
            .iter()
            .filter(|(name, l, _)| {
                name == sample
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
            })
            .map(|s| s.2)
            .sum()
    })
}

async fn scrape(app: &TestApp, token: Option<&str>) -> HashMap<String, (String, Vec<Sample>)> {
    let reply = app.get("/metrics", token).await;
    assert_eq!(reply.status.code, 200, "{}", reply.body);
    assert!(
        reply
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        reply.content_type
    );
    parse(reply.body.as_str().expect("a text body"))
}

async fn metered_app() -> TestApp {
    spawn_app_with(|f| f.merge(Serialized::global("token_features", [FEATURE]))).await
}

async fn grant(app: &TestApp, user_id: &str, amount: i64) {
    let (user_id, now) = (user_id.to_owned(), app.clock_now());
    app.app()
        .db
        .write(move |tx| {
            let grant = Grant {
                user_id: &user_id,
                source: Source::Refund,
                source_ref: "metrics-test",
                amount,
                expires_at: None,
                description: None,
            };
            ledger::grant(tx, &grant, now)
                .map(|_| ())
                .map_err(audiostudio::http::error::ApiError::from)
        })
        .await
        .unwrap();
}

const FAMILIES: [(&str, &str); 19] = [
    ("audiostudio_http_requests", "counter"),
    ("audiostudio_http_request_duration_seconds", "histogram"),
    ("audiostudio_db_write_queue_depth", "gauge"),
    ("audiostudio_db_write_batch_size", "histogram"),
    ("audiostudio_db_commit_duration_seconds", "histogram"),
    ("audiostudio_db_read_wait_seconds", "histogram"),
    ("audiostudio_webhook_events", "gauge"),
    ("audiostudio_webhook_oldest_pending_age_seconds", "gauge"),
    ("audiostudio_email_outbox", "gauge"),
    ("audiostudio_tokens_granted", "counter"),
    ("audiostudio_tokens_spent", "counter"),
    ("audiostudio_password_hashes_in_flight", "gauge"),
    ("audiostudio_uptime_seconds", "gauge"),
    ("audiostudio_process_resident_memory_bytes", "gauge"),
    ("audiostudio_process_virtual_memory_bytes", "gauge"),
    ("audiostudio_process_cpu_seconds", "counter"),
    ("audiostudio_process_open_fds", "gauge"),
    ("audiostudio_process_max_fds", "gauge"),
    ("audiostudio_process_start_time_seconds", "gauge"),
];

#[rocket::async_test]
async fn every_documented_family_is_served_with_its_type() {
    let app = metered_app().await;
    let (token, user_id) = user(&app, "metrics-families@example.com").await;
    grant(&app, &user_id, 10).await;
    let spent = app
        .post(
            "/api/tokens/use",
            json!({"amount": 1, "feature": FEATURE}),
            Some(&token),
        )
        .await;
    assert_eq!(spent.status.code, 200, "{}", spent.body);
    let families = scrape(&app, None).await;
    for (name, kind) in FAMILIES {
        let family = families.get(name);
        assert_eq!(family.map(|f| f.0.as_str()), Some(kind), "{name}");
    }
    // The queues of this app's database: its one email (the registration's), no events.
    let outbox = "audiostudio_email_outbox";
    assert_eq!(value(&families, outbox, outbox, &[]), 1.0);
    let events = "audiostudio_webhook_events";
    assert_eq!(value(&families, events, events, &[]), 0.0);
    assert!(
        value(
            &families,
            "audiostudio_process_resident_memory_bytes",
            "audiostudio_process_resident_memory_bytes",
            &[]
        ) > 0.0
    );
    assert!(
        value(
            &families,
            "audiostudio_process_open_fds",
            "audiostudio_process_open_fds",
            &[]
        ) > 0.0
    );
    // Every request series has a bounded route label: no raw path with an id in it.
    let (_, requests) = &families["audiostudio_http_requests"];
    for (_, labels, _) in requests {
        let route = &labels["route"];
        assert!(route == "unmatched" || route.starts_with('/'), "{labels:?}");
        assert!(["1xx", "2xx", "3xx", "4xx", "5xx"].contains(&labels["status"].as_str()));
    }
}

#[rocket::async_test]
async fn spends_captures_and_requests_move_their_counters() {
    let app = metered_app().await;
    let (token, user_id) = user(&app, "metrics-counters@example.com").await;
    let before = scrape(&app, None).await;
    grant(&app, &user_id, 1000).await;
    for _ in 0..3 {
        let spent = app
            .post(
                "/api/tokens/use",
                json!({"amount": 7, "feature": FEATURE}),
                Some(&token),
            )
            .await;
        assert_eq!(spent.status.code, 200, "{}", spent.body);
    }
    let refused = app
        .post(
            "/api/tokens/use",
            json!({"amount": 5000, "feature": FEATURE}),
            Some(&token),
        )
        .await;
    assert_eq!(refused.status.code / 100, 4, "{}", refused.body);
    let hold = app
        .post(
            "/api/tokens/holds",
            json!({"amount": 20, "feature": FEATURE}),
            Some(&token),
        )
        .await;
    assert_eq!(hold.status.code, 201, "{}", hold.body);
    let id = hold.body["id"].as_str().unwrap();
    let captured = app
        .post(
            &format!("/api/tokens/holds/{id}/capture"),
            json!({"amount": 12}),
            Some(&token),
        )
        .await;
    assert_eq!(captured.status.code, 200, "{}", captured.body);
    app.get("/no/such/path/4711", None).await;
    let after = scrape(&app, None).await;

    let delta = |family: &str, sample: &str, labels: &[(&str, &str)]| {
        value(&after, family, sample, labels) - value(&before, family, sample, labels)
    };
    let spent = "audiostudio_tokens_spent";
    // 3 spends of 7 and a capture of 12; the refused spend counts nothing.
    assert_eq!(
        delta(
            spent,
            "audiostudio_tokens_spent_total",
            &[("feature", FEATURE)]
        ),
        33.0
    );
    let granted = "audiostudio_tokens_granted";
    assert!(
        delta(
            granted,
            "audiostudio_tokens_granted_total",
            &[("source", "refund")]
        ) >= 1000.0
    );
    let requests = "audiostudio_http_requests";
    let total = "audiostudio_http_requests_total";
    let spend_ok = [
        ("method", "POST"),
        ("route", "/api/tokens/use"),
        ("status", "2xx"),
    ];
    assert!(delta(requests, total, &spend_ok) >= 3.0);
    let spend_refused = [
        ("method", "POST"),
        ("route", "/api/tokens/use"),
        ("status", "4xx"),
    ];
    assert!(delta(requests, total, &spend_refused) >= 1.0);
    let capture = [
        ("route", "/api/tokens/holds/<id>/capture"),
        ("status", "2xx"),
    ];
    assert!(delta(requests, total, &capture) >= 1.0);
    assert!(
        delta(
            requests,
            total,
            &[("route", "unmatched"), ("status", "4xx")]
        ) >= 1.0
    );
    let duration = "audiostudio_http_request_duration_seconds";
    assert!(delta(duration, &format!("{duration}_count"), &spend_ok) >= 3.0);
    // No series is labelled with a raw path.
    let raw = after[requests]
        .1
        .iter()
        .any(|(_, l, _)| l["route"].contains(id));
    assert!(!raw);
}

#[rocket::async_test]
async fn with_a_metrics_token_only_its_bearer_may_scrape() {
    let app = spawn_app_with(|f| f.merge(Serialized::global("metrics_token", TOKEN))).await;
    app.get("/metrics", None).await.assert_problem(401);
    app.get("/metrics", Some("metrics-scrape-token-012345678"))
        .await
        .assert_problem(401);
    let (user_token, _) = user(&app, "metrics-token@example.com").await;
    let refused = app.get("/metrics", Some(&user_token)).await;
    refused.assert_problem(401);
    assert!(!refused.body.to_string().contains(TOKEN));
    let families = scrape(&app, Some(TOKEN)).await;
    assert!(families.contains_key("audiostudio_http_requests"));
}

#[rocket::async_test]
async fn a_short_metrics_token_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let figment = test_figment(dir.path()).merge(Serialized::global("metrics_token", "short"));
    let error = audiostudio::build(figment, Default::default())
        .err()
        .unwrap();
    assert!(error.to_string().contains("metrics_token"), "{error}");
}

/// The document lists `/metrics` beside `/health`.
#[rocket::async_test]
async fn metrics_is_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/openapi.json", None).await.body;
    assert!(doc["paths"]["/metrics"]["get"]["responses"]["401"].is_object());
}
