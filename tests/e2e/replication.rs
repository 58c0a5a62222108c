//! Continuous replication with Litestream (v0.3.13, from npm: tests/replication/package.json)
//! to a file replica: the server takes spends under load, then it and Litestream are killed
//! with SIGKILL; `litestream restore` on a "new machine" gives a database whose ledger is
//! clean and holds every spend acknowledged more than the replication lag before the kill.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::backup::{LOAD_ENVS, assert_check_clean, spend_ids, spend_until, user_with_tokens};
use crate::harness::*;

/// How often Litestream ships WAL frames to the replica, and how often it looks for them.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
const MONITOR_INTERVAL: Duration = Duration::from_millis(100);

/// The Litestream binary, installed with `npm ci` in tests/replication when missing.
fn litestream() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replication");
    let bin = dir.join("node_modules/@flydotio/litestream-linux-x64/litestream");
    if !bin.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm (Node.js is needed to install Litestream)");
        assert!(status.success(), "npm ci in tests/replication failed");
    }
    bin
}

fn write_config(dir: &Path) -> PathBuf {
    let config = dir.join("litestream.yml");
    let yaml = format!(
        "dbs:\n  - path: {db}\n    monitor-interval: {monitor}ms\n    replicas:\n      - type: file\n        path: {replica}\n        sync-interval: {sync}ms\n",
        db = data_dir(dir).join("audiostudio.db").display(),
        replica = dir.join("replica").display(),
        monitor = MONITOR_INTERVAL.as_millis(),
        sync = SYNC_INTERVAL.as_millis(),
    );
    std::fs::write(&config, yaml).unwrap();
    config
}

/// Waits until Litestream has written a snapshot of a generation into the file replica.
fn wait_for_snapshot(replica: &Path, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let has_snapshot = || {
        std::fs::read_dir(replica.join("generations"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|generation| {
                std::fs::read_dir(generation.path().join("snapshots"))
                    .is_ok_and(|mut snapshots| snapshots.next().is_some())
            })
    };
    while !has_snapshot() {
        assert!(
            Instant::now() < deadline,
            "litestream wrote no snapshot within 30 s:\n{}",
            read_log(log)
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_litestream_replica_restored_after_sigkill_holds_every_spend_older_than_the_sync_interval() {
    let bin = litestream();
    let dir = tempfile::tempdir().unwrap();
    let email = "replica@example.com";
    user_with_tokens(dir.path(), email, 1_000_000);
    let config = write_config(dir.path());
    let mut envs = LOAD_ENVS.to_vec();
    envs.push(("ROCKET_WAL_CHECKPOINT_ON_SHUTDOWN", "passive"));
    let server = Session::start(dir.path(), &envs, email);
    let log = std::fs::File::create(dir.path().join("litestream.log")).unwrap();
    let mut replicate = Command::new(&bin)
        .args(["replicate", "-config", path_str(&config)])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start litestream");
    // Litestream's first write (its `_litestream_seq` table) and first snapshot happen at
    // startup; an operator starts it before the traffic, and so does the test.
    wait_for_snapshot(
        &dir.path().join("replica"),
        &dir.path().join("litestream.log"),
    );

    let stop = AtomicBool::new(false);
    let acks = thread::scope(|s| {
        let load = s.spawn(|| spend_until(&server, 16, &stop));
        thread::sleep(Duration::from_secs(4));
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap()
    });
    // SIGKILL both, the server first: nothing gets a chance to flush or checkpoint.
    let killed_at = Instant::now();
    drop(server);
    kill(&mut replicate);
    let litestream_log = read_log(&dir.path().join("litestream.log"));

    let fresh = tempfile::tempdir().unwrap();
    std::fs::create_dir(data_dir(fresh.path())).unwrap();
    let output = data_dir(fresh.path()).join("audiostudio.db");
    let restore = Command::new(&bin)
        .args([
            "restore",
            "-config",
            path_str(&config),
            "-o",
            path_str(&output),
        ])
        .arg(data_dir(dir.path()).join("audiostudio.db"))
        .output()
        .expect("run litestream restore");
    assert!(
        restore.status.success(),
        "litestream restore: {}\n{litestream_log}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert_check_clean(fresh.path());
    let restored = spend_ids(fresh.path());
    let window = SYNC_INTERVAL + SYNC_INTERVAL;
    let (old, recent): (Vec<_>, Vec<_>) = acks
        .iter()
        .partition(|(_, at)| killed_at.duration_since(*at) > window);
    let lost_old: Vec<i64> = old
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !restored.contains(id))
        .collect();
    let lost_recent = recent
        .iter()
        .filter(|(id, _)| !restored.contains(id))
        .count();
    eprintln!(
        "replication: {} spends acknowledged; {} in the last {window:?} before the kill, {lost_recent} of them lost; {} older ones lost",
        acks.len(),
        recent.len(),
        lost_old.len()
    );
    assert!(
        !old.is_empty(),
        "spends were acknowledged well before the kill"
    );
    assert!(
        lost_old.is_empty(),
        "acknowledged spends lost: {lost_old:?}\n{litestream_log}"
    );

    let mut again = Session::start(fresh.path(), &LOAD_ENVS, email);
    assert_eq!(again.balance_tokens(), 1_000_000 - restored.len() as i64);
    again.stop_ok();
}
