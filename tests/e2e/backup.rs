//! Online backup and restore against the real binary: a backup taken under write load is
//! complete and consistent, and restore refuses what it must, leaving the database alone.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

/// Unthrottled token mutations: 16 clients spend as fast as they can.
pub const LOAD_ENVS: [(&str, &str); 3] = [
    ("ROCKET_RATE_LIMIT_LOGIN_PER_MINUTE", "100000"),
    ("ROCKET_RATE_LIMIT_TOKEN_MUTATIONS_PER_MINUTE", "1000000"),
    ("ROCKET_RATE_LIMIT_GLOBAL_PER_MINUTE", "10000000"),
];

/// Creates `email` with `tokens` granted, through the CLI.
pub fn user_with_tokens(dir: &Path, email: &str, tokens: i64) {
    data_cli_ok(
        dir,
        &["users", "create", "--email", email],
        Some(&format!("{PASSWORD}\n")),
    );
    let amount = tokens.to_string();
    data_cli_ok(
        dir,
        &["tokens", "grant", email, &amount, "--reason", "e2e"],
        Some(""),
    );
}

/// One acknowledged spend: its transaction id and when its 200 arrived.
pub type Ack = (i64, Instant);

/// `clients` threads spending one token each (with an Idempotency-Key) until `stop`.
pub fn spend_until(server: &Session, clients: usize, stop: &AtomicBool) -> Vec<Ack> {
    let acks = Mutex::new(Vec::new());
    thread::scope(|s| {
        for client in 0..clients {
            let acks = &acks;
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body =
                        json!({ "amount": 1, "feature": "text_to_speech", "description": "load" });
                    let response = server
                        .authed_post("/api/tokens/use", &body)
                        .header("Idempotency-Key", format!("load-{client}-{n}"))
                        .send();
                    let Ok(response) = response else { continue };
                    if response.status() != StatusCode::OK {
                        continue;
                    }
                    let at = Instant::now();
                    let value: serde_json::Value = response.json().expect("a JSON body");
                    let id = value["transaction"]["id"].as_i64().expect("transaction id");
                    acks.lock().unwrap().push((id, at));
                }
            });
        }
    });
    acks.into_inner().unwrap()
}

/// The spend transaction ids in `<dir>/data`'s database.
pub fn spend_ids(dir: &Path) -> std::collections::BTreeSet<i64> {
    let conn = db(dir);
    let mut stmt = conn
        .prepare("SELECT id FROM token_transactions WHERE kind = 'spend'")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

pub fn assert_check_clean(dir: &Path) {
    let out = data_cli(dir, &["check"], Some(""));
    assert!(out.status.success(), "check: {out}");
    assert!(out.stdout.contains("ledger consistent"), "{out}");
}

#[test]
fn a_backup_taken_under_sixteen_spending_clients_verifies_and_restores_every_earlier_spend() {
    let dir = tempfile::tempdir().unwrap();
    let email = "load@example.com";
    user_with_tokens(dir.path(), email, 1_000_000);
    let mut server = Session::start(dir.path(), &LOAD_ENVS, email);
    let copy = dir.path().join("copy.db");

    let stop = AtomicBool::new(false);
    let (acks, (backup_started, out)) = thread::scope(|s| {
        let load = s.spawn(|| spend_until(&server, 16, &stop));
        thread::sleep(Duration::from_millis(1500));
        let started = Instant::now();
        let out = data_cli(dir.path(), &["backup", path_str(&copy)], None);
        thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        (load.join().unwrap(), (started, out))
    });
    server.stop_ok();
    assert!(out.status.success(), "backup under load: {out}");
    assert!(out.stdout.contains("integrity ok"), "{out}");
    let before: Vec<i64> = acks
        .iter()
        .filter(|(_, at)| *at < backup_started)
        .map(|(id, _)| *id)
        .collect();
    assert!(
        !before.is_empty(),
        "spends were acknowledged before the backup"
    );
    eprintln!(
        "{} spends acknowledged, {} before the backup started",
        acks.len(),
        before.len()
    );

    let verify = data_cli(dir.path(), &["backup", "--verify", path_str(&copy)], None);
    assert!(verify.status.success(), "{verify}");
    assert!(
        verify.stdout.contains("ledger consistent for 1 users"),
        "{verify}"
    );

    let fresh = tempfile::tempdir().unwrap();
    let restore = data_cli(fresh.path(), &["restore", path_str(&copy)], None);
    assert!(restore.status.success(), "{restore}");
    assert_check_clean(fresh.path());
    let restored = spend_ids(fresh.path());
    let missing: Vec<&i64> = before.iter().filter(|id| !restored.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged spends missing from the backup: {missing:?}"
    );
    let mut again = Session::start(fresh.path(), &LOAD_ENVS, email);
    let balance = again.balance_tokens();
    assert_eq!(balance, 1_000_000 - restored.len() as i64);
    again.stop_ok();
}

/// A restore of `file` into `<dir>/data` fails naming `problem`, the database unchanged.
fn assert_refused(dir: &Path, file: &Path, problem: &str) {
    let database = data_dir(dir).join("audiostudio.db");
    let before = std::fs::read(&database).unwrap();
    let out = data_cli(dir, &["restore", path_str(file)], None);
    assert!(
        !out.status.success(),
        "restore of {file:?} should fail: {out}"
    );
    assert!(out.stderr.contains(problem), "expected {problem:?}: {out}");
    assert_eq!(
        std::fs::read(&database).unwrap(),
        before,
        "the database changed"
    );
    let aside = std::fs::read_dir(data_dir(dir))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("before-restore")
        })
        .count();
    assert_eq!(aside, 0, "nothing was set aside");
}

#[test]
fn restore_refuses_a_truncated_foreign_or_newer_file_and_a_served_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let email = "keep@example.com";
    user_with_tokens(dir.path(), email, 77);
    let good = dir.path().join("good.db");
    data_cli_ok(dir.path(), &["backup", path_str(&good)], None);
    let bytes = std::fs::read(&good).unwrap();

    let truncated = dir.path().join("truncated.db");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(dir.path(), &truncated, "truncated");

    let text = dir.path().join("notes.db");
    std::fs::write(
        &text,
        "these are not the tables you are looking for\n".repeat(100),
    )
    .unwrap();
    assert_refused(dir.path(), &text, "not an SQLite database");

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT);")
        .unwrap();
    assert_refused(dir.path(), &foreign, "not audiostudio's");

    let newer = dir.path().join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (9999, 'from_the_future', '2030-01-01T00:00:00Z', '0')",
            [],
        )
        .unwrap();
    assert_refused(
        dir.path(),
        &newer,
        "schema version 9999 is newer than this binary's",
    );

    let mut server = Session::start(dir.path(), &[], email);
    let out = data_cli(dir.path(), &["restore", path_str(&good)], None);
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr
            .contains("in use by a running audiostudio server"),
        "{out}"
    );
    assert_eq!(
        server.balance_tokens(),
        77,
        "the served database is the same"
    );
    server.stop_ok();
    assert_refused(dir.path(), &truncated, "truncated");

    let out = data_cli(dir.path(), &["restore", path_str(&good)], None);
    assert!(
        out.status.success(),
        "a good backup restores once the server is stopped: {out}"
    );
    assert!(out.stdout.contains("previous database is kept as"), "{out}");
}
