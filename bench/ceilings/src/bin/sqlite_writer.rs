//! One SQLite writer doing what a spend does at its core, a debit plus a ledger insert per
//! transaction, for a few seconds at `synchronous = NORMAL` and `FULL`: the storage ceiling.
//! Usage: sqlite_writer <dir> [seconds]

use std::time::{Duration, Instant};

use rusqlite::Connection;

fn run(dir: &str, mode: &str, seconds: u64) -> rusqlite::Result<f64> {
    let path = format!("{dir}/writer-{mode}.db");
    let _ = std::fs::remove_file(&path);
    let conn = Connection::open(&path)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {mode};
         CREATE TABLE balances (user_id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE ledger (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
             amount INTEGER NOT NULL, balance_after INTEGER NOT NULL, created_at INTEGER NOT NULL);
         INSERT INTO balances VALUES (1, 1000000000);"
    ))?;
    let (start, limit) = (Instant::now(), Duration::from_secs(seconds));
    let mut done = 0u64;
    while start.elapsed() < limit {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let after: i64 = conn.query_row(
            "UPDATE balances SET balance = balance - 1 WHERE user_id = 1 RETURNING balance",
            [],
            |r| r.get(0),
        )?;
        conn.execute(
            "INSERT INTO ledger (user_id, amount, balance_after, created_at) VALUES (1, -1, ?1, ?2)",
            (after, done as i64),
        )?;
        conn.execute_batch("COMMIT")?;
        done += 1;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: sqlite_writer <dir> [seconds]");
    let seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    for mode in ["NORMAL", "FULL"] {
        match run(&dir, mode, seconds) {
            Ok(rate) => println!("{mode} {rate:.0}"),
            Err(e) => {
                eprintln!("sqlite_writer: {e}");
                std::process::exit(1);
            }
        }
    }
}
