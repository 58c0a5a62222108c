//! Continuous replication with Litestream (v0.3.13, from npm: tests/replication/package.json)
//! to a file replica and to an S3 bucket (moto's server, from PyPI, on 127.0.0.1), one flow
//! for both: the server takes spends under load, then it and Litestream are killed with
//! SIGKILL; `litestream restore` on a "new machine" gives a database whose ledger is clean
//! and holds every spend acknowledged more than the replication lag before the kill.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// Where Litestream replicates to: a directory, or a bucket on a local S3 (moto).
enum Replica {
    File(PathBuf),
    S3(Moto),
}

const BUCKET: &str = "audiostudio-replica";

impl Replica {
    fn kind(&self) -> &'static str {
        match self {
            Replica::File(_) => "file",
            Replica::S3(_) => "s3",
        }
    }

    /// The replica's entry in litestream.yml (indented for `replicas:`).
    fn yaml(&self) -> String {
        let sync = SYNC_INTERVAL.as_millis();
        match self {
            Replica::File(path) => format!(
                "      - type: file\n        path: {}\n        sync-interval: {sync}ms\n",
                path.display()
            ),
            Replica::S3(moto) => format!(
                "      - type: s3\n        bucket: {BUCKET}\n        path: audiostudio.db\n        endpoint: http://127.0.0.1:{}\n        region: us-east-1\n        force-path-style: true\n        sync-interval: {sync}ms\n",
                moto.port
            ),
        }
    }

    /// What every `litestream` command needs in its environment (the S3 credentials).
    fn envs(&self) -> Vec<(&'static str, &'static str)> {
        match self {
            Replica::File(_) => Vec::new(),
            // moto accepts any key; the real ones come the same way, never in the file.
            Replica::S3(_) => vec![
                ("LITESTREAM_ACCESS_KEY_ID", "moto-test-key"),
                ("LITESTREAM_SECRET_ACCESS_KEY", "moto-test-secret"),
            ],
        }
    }
}

/// moto's S3 server (PyPI `moto[server]`, pinned in tests/requirements.txt) on 127.0.0.1,
/// with the replica's bucket created; killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Installs tests/requirements.txt when moto's server is missing (a fresh machine).
fn ensure_moto() {
    let importable = || {
        Command::new("python3")
            .args(["-c", "import moto.server, flask_cors"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if importable() {
        return;
    }
    let requirements = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/requirements.txt");
    let pip = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements)
        .output()
        .expect("python3 is needed for the S3 replica test");
    assert!(
        pip.status.success() && importable(),
        "could not install moto[server] from {requirements}: {}",
        String::from_utf8_lossy(&pip.stderr)
    );
}

fn start_moto(dir: &Path) -> Moto {
    ensure_moto();
    let port = free_port();
    let log = std::fs::File::create(dir.join("moto.log")).unwrap();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start moto's server");
    let moto = Moto { child, port };
    let http = http();
    let url = format!("http://127.0.0.1:{port}/{BUCKET}");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Creating the bucket (an unsigned PUT: moto does not check signatures) is also the
    // readiness probe.
    loop {
        match http.put(&url).timeout(Duration::from_secs(2)).send() {
            Ok(r) if r.status().is_success() => return moto,
            Ok(r) => panic!("moto refused to create the bucket: {}", r.status()),
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!(
                "moto did not answer within 30 s: {e}\n{}",
                read_log(&dir.join("moto.log"))
            ),
        }
    }
}

fn write_config(dir: &Path, replica: &Replica) -> PathBuf {
    let config = dir.join("litestream.yml");
    let yaml = format!(
        "dbs:\n  - path: {db}\n    monitor-interval: {monitor}ms\n    replicas:\n{replica}",
        db = data_dir(dir).join("audiostudio.db").display(),
        monitor = MONITOR_INTERVAL.as_millis(),
        replica = replica.yaml(),
    );
    std::fs::write(&config, yaml).unwrap();
    config
}

/// `litestream <args> -config <config>` with the replica's environment.
fn litestream_command(bin: &Path, replica: &Replica, args: &[&str], config: &Path) -> Command {
    let mut command = Command::new(bin);
    command
        .args(args)
        .arg("-config")
        .arg(config)
        .envs(replica.envs())
        .stdin(Stdio::null());
    command
}

/// Waits until Litestream lists a snapshot of the database in the replica (the same
/// question for a directory and a bucket: `litestream snapshots`).
fn wait_for_snapshot(bin: &Path, replica: &Replica, config: &Path, db: &Path, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = litestream_command(bin, replica, &["snapshots"], config)
            .arg(db)
            .output()
            .expect("run litestream snapshots");
        // A header line, then one line per snapshot.
        let text = String::from_utf8_lossy(&listed.stdout);
        if listed.status.success() && text.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "litestream wrote no snapshot within 30 s:\n{}",
            read_log(log)
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// The spends the load got acknowledged, and which of them a restored database holds.
struct Outcome {
    acks: Vec<(i64, Instant)>,
    killed_at: Instant,
    restored: std::collections::BTreeSet<i64>,
}

/// The server under Litestream replicating to `replica` (made in the test's dir), 16
/// clients spending for 4 s, SIGKILL to both, `litestream restore` into a fresh data dir:
/// checks the restored server and that no spend older than the lag window was lost.
fn replicate_kill_restore(make_replica: impl FnOnce(&Path) -> Replica) {
    let bin = litestream();
    let dir = tempfile::tempdir().unwrap();
    let replica = make_replica(dir.path());
    let email = "replica@example.com";
    user_with_tokens(dir.path(), email, 1_000_000);
    let config = write_config(dir.path(), &replica);
    let live_db = data_dir(dir.path()).join("audiostudio.db");
    let log_path = dir.path().join("litestream.log");
    let mut envs = LOAD_ENVS.to_vec();
    // As the README tells an operator: never reset the WAL under Litestream, and leave
    // the checkpoints to it.
    envs.push(("ROCKET_WAL_CHECKPOINT_ON_SHUTDOWN", "passive"));
    envs.push(("ROCKET_WAL_AUTOCHECKPOINT", "0"));
    let server = Session::start(dir.path(), &envs, email);
    let log = std::fs::File::create(&log_path).unwrap();
    let mut replicate = litestream_command(&bin, &replica, &["replicate"], &config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start litestream");
    // Litestream's first write (its `_litestream_seq` table) and first snapshot happen at
    // startup; an operator starts it before the traffic, and so does the test.
    wait_for_snapshot(&bin, &replica, &config, &live_db, &log_path);

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
    let litestream_log = read_log(&log_path);

    let fresh = tempfile::tempdir().unwrap();
    std::fs::create_dir(data_dir(fresh.path())).unwrap();
    let output = data_dir(fresh.path()).join("audiostudio.db");
    let restore = litestream_command(&bin, &replica, &["restore"], &config)
        .arg("-o")
        .arg(&output)
        .arg(&live_db)
        .output()
        .expect("run litestream restore");
    assert!(
        restore.status.success(),
        "litestream restore: {}\n{litestream_log}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert_check_clean(fresh.path());
    let outcome = Outcome {
        acks,
        killed_at,
        restored: spend_ids(fresh.path()),
    };
    assert_nothing_older_lost(replica.kind(), &outcome, &litestream_log);

    let mut again = Session::start(fresh.path(), &LOAD_ENVS, email);
    assert_eq!(
        again.balance_tokens(),
        1_000_000 - outcome.restored.len() as i64
    );
    again.stop_ok();
}

/// Prints the figures (acknowledged, in the last window, lost, the lag seen) and asserts
/// that every spend acknowledged before the window is in the restored database.
fn assert_nothing_older_lost(kind: &str, outcome: &Outcome, litestream_log: &str) {
    let window = SYNC_INTERVAL + SYNC_INTERVAL;
    let before_kill = |at: &Instant| outcome.killed_at.duration_since(*at);
    let (old, recent): (Vec<_>, Vec<_>) = outcome
        .acks
        .iter()
        .partition(|(_, at)| before_kill(at) > window);
    let lost = |acks: &[&(i64, Instant)]| -> Vec<(i64, Instant)> {
        acks.iter()
            .filter(|(id, _)| !outcome.restored.contains(id))
            .map(|a| **a)
            .collect()
    };
    let (lost_old, lost_recent) = (lost(&old), lost(&recent));
    // The lag seen: how long before the kill the oldest lost spend was acknowledged.
    let lag = lost_recent
        .iter()
        .chain(&lost_old)
        .map(|(_, at)| before_kill(at))
        .max();
    eprintln!(
        "replication ({kind}): {} spends acknowledged; {} in the last {window:?} before the kill, {} of them lost; {} older ones lost; oldest lost acknowledged {lag:?} before the kill; Litestream logged {} sync errors",
        outcome.acks.len(),
        recent.len(),
        lost_recent.len(),
        lost_old.len(),
        litestream_log.matches("sync error").count()
    );
    for line in litestream_log.lines().filter(|l| l.contains("sync error")) {
        eprintln!("  {line}");
    }
    assert!(
        !old.is_empty(),
        "spends were acknowledged well before the kill"
    );
    let lost_ids: Vec<i64> = lost_old.iter().map(|(id, _)| *id).collect();
    assert!(
        lost_ids.is_empty(),
        "acknowledged spends lost: {lost_ids:?}\n{litestream_log}"
    );
}

#[test]
fn a_litestream_file_replica_restored_after_sigkill_holds_every_spend_older_than_the_sync_interval()
{
    replicate_kill_restore(|dir| Replica::File(dir.join("replica")));
}

#[test]
fn a_litestream_s3_replica_restored_after_sigkill_holds_every_spend_older_than_the_sync_interval() {
    replicate_kill_restore(|dir| Replica::S3(start_moto(dir)));
}
