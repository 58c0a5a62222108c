//! Prometheus metrics: the process-wide recorder, every metric's name, and the values
//! read at scrape time (queues in the database, the process itself).
//!
//! The recorder is global (the `metrics` facade has one per process): `install` sets it
//! up once and every later call, from any app in the same process, gets the same handle.
//! Hot paths record through the facade's macros with `&'static str` labels only, so a
//! request costs a few atomic operations and no label strings are built.

use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rusqlite::Connection;

pub const HTTP_REQUESTS: &str = "audiostudio_http_requests_total";
pub const HTTP_DURATION: &str = "audiostudio_http_request_duration_seconds";
pub const DB_WRITE_QUEUE: &str = "audiostudio_db_write_queue_depth";
pub const DB_WRITE_BATCH: &str = "audiostudio_db_write_batch_size";
pub const DB_COMMIT: &str = "audiostudio_db_commit_duration_seconds";
pub const DB_READ_WAIT: &str = "audiostudio_db_read_wait_seconds";
pub const WEBHOOK_EVENTS: &str = "audiostudio_webhook_events";
pub const WEBHOOK_OLDEST_PENDING: &str = "audiostudio_webhook_oldest_pending_age_seconds";
pub const EMAIL_OUTBOX: &str = "audiostudio_email_outbox";
pub const TOKENS_GRANTED: &str = "audiostudio_tokens_granted_total";
pub const TOKENS_SPENT: &str = "audiostudio_tokens_spent_total";
pub const PASSWORD_HASHES: &str = "audiostudio_password_hashes_in_flight";
pub const UPTIME: &str = "audiostudio_uptime_seconds";
/// metrics-process adds `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, ... after this prefix.
const PROCESS_PREFIX: &str = "audiostudio_";

const WEBHOOK_STATUSES: [&str; 5] = ["pending", "processing", "processed", "ignored", "failed"];
const OUTBOX_STATUSES: [&str; 3] = ["pending", "sent", "failed"];

const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Password hashes running now: a guard counts one from creation to drop.
pub struct HashInFlight(());

impl HashInFlight {
    pub fn start() -> HashInFlight {
        gauge!(PASSWORD_HASHES).increment(1.0);
        HashInFlight(())
    }
}

impl Drop for HashInFlight {
    fn drop(&mut self) {
        gauge!(PASSWORD_HASHES).decrement(1.0);
    }
}

/// The installed recorder's renderer and the process collector.
pub struct Registry {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    started: Instant,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// Installs the global recorder the first time it is called; then returns the same one.
/// Never panics: when another recorder was installed first, ours renders only what it
/// reads at scrape time, and a warning says so.
pub fn install() -> &'static Registry {
    REGISTRY.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows little");
        }
        describe();
        let process = metrics_process::Collector::new(PROCESS_PREFIX);
        process.describe();
        // Histogram samples are folded into their buckets here (and at each scrape).
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
        Registry {
            handle,
            process,
            started: Instant::now(),
        }
    })
}

fn builder() -> PrometheusBuilder {
    let buckets = [
        (HTTP_DURATION, &SECONDS_BUCKETS[..]),
        (DB_COMMIT, &SECONDS_BUCKETS[..]),
        (DB_READ_WAIT, &SECONDS_BUCKETS[..]),
        (DB_WRITE_BATCH, &BATCH_BUCKETS[..]),
    ];
    buckets
        .into_iter()
        .fold(PrometheusBuilder::new(), |builder, (name, values)| {
            builder
                .set_buckets_for_metric(Matcher::Full(name.into()), values)
                .expect("bucket lists are constant and non-empty")
        })
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status class."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response, by method, route template and status class."
    );
    describe_gauge!(
        DB_WRITE_QUEUE,
        "Write jobs waiting for the SQLite writer thread."
    );
    describe_histogram!(DB_WRITE_BATCH, "Write jobs per group commit.");
    describe_histogram!(DB_COMMIT, Unit::Seconds, "Time to commit one group commit.");
    describe_histogram!(
        DB_READ_WAIT,
        Unit::Seconds,
        "Time a read waited for a pooled read-only connection."
    );
    describe_gauge!(WEBHOOK_EVENTS, "Stored Stripe webhook events, by status.");
    describe_gauge!(
        WEBHOOK_OLDEST_PENDING,
        Unit::Seconds,
        "Age of the oldest webhook event still pending or processing (0 when none)."
    );
    describe_gauge!(EMAIL_OUTBOX, "Emails in the outbox, by status.");
    describe_counter!(TOKENS_GRANTED, "Tokens granted (committed), by source.");
    describe_counter!(TOKENS_SPENT, "Tokens spent (committed), by feature.");
    describe_gauge!(PASSWORD_HASHES, "Password hashes (argon2) running now.");
    describe_gauge!(
        UPTIME,
        Unit::Seconds,
        "Seconds since the metrics recorder started with the server."
    );
}

impl Registry {
    /// Refreshes the process gauges and renders every metric in Prometheus text format.
    /// Blocking (it reads `/proc`): call it off the async executor.
    pub fn render(&self) -> String {
        self.process.collect();
        gauge!(UPTIME).set(self.started.elapsed().as_secs_f64());
        self.handle.render()
    }
}

/// Sets the queue gauges from the database: webhook events and emails by status, and the
/// age of the oldest pending webhook event. Runs on a read connection at scrape time.
pub fn observe_queues(conn: &Connection, now_ms: i64) -> rusqlite::Result<()> {
    for (table, statuses, name) in [
        ("webhook_events", &WEBHOOK_STATUSES[..], WEBHOOK_EVENTS),
        ("email_outbox", &OUTBOX_STATUSES[..], EMAIL_OUTBOX),
    ] {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT status, COUNT(*) FROM {table} GROUP BY status"
        ))?;
        let counts: Vec<(String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for status in statuses {
            let n = counts.iter().find(|(s, _)| s == status).map_or(0, |c| c.1);
            gauge!(name, "status" => *status).set(n as f64);
        }
    }
    let oldest: Option<i64> = conn.query_row(
        "SELECT MIN(received_at) FROM webhook_events WHERE status IN ('pending', 'processing')",
        [],
        |r| r.get(0),
    )?;
    let age_ms = oldest.map_or(0, |at| now_ms.saturating_sub(at).max(0));
    gauge!(WEBHOOK_OLDEST_PENDING).set(age_ms as f64 / 1000.0);
    Ok(())
}

/// `value` as a `&'static str`, leaked once per distinct value: only for label values
/// from a small fixed set (route templates, configured token features).
pub fn interned(value: &str) -> &'static str {
    static SEEN: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(known) = seen.read().unwrap_or_else(|e| e.into_inner()).get(value) {
        return known;
    }
    let mut seen = seen.write().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = seen.get(value) {
        return known;
    }
    let leaked: &'static str = Box::leak(value.to_owned().into_boxed_str());
    seen.insert(leaked);
    leaked
}

/// Counts granted tokens; call once the grant is committed.
pub fn tokens_granted(source: &'static str, amount: i64) {
    counter!(TOKENS_GRANTED, "source" => source).increment(amount.max(0) as u64);
}

/// Counts spent tokens; call once the spend is committed. `feature` is one of the
/// configured features (a bounded set), `interned`.
pub fn tokens_spent(feature: &'static str, amount: i64) {
    counter!(TOKENS_SPENT, "feature" => feature).increment(amount.max(0) as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_twice_gives_the_same_recorder_and_interning_reuses_strings() {
        let first = install() as *const Registry;
        assert_eq!(first, install() as *const Registry);
        let a = interned(&String::from("/api/x/<id>"));
        assert!(std::ptr::eq(a, interned("/api/x/<id>")));
    }
}
