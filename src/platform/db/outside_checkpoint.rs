//! Room for an outside checkpointer (Litestream) under a steady stream of writes.
//!
//! With `wal_autocheckpoint = 0` another process checkpoints the WAL, and its checkpoint
//! ends with a small write of its own, which needs the write lock. SQLite's busy handler
//! polls for a lock (100 ms apart at worst) while the writer thread, group-committing
//! back to back, holds it nearly all the time: Litestream's write then fails with
//! `database is locked` after its 1 s busy timeout, its sync is lost, and the replica falls
//! seconds behind. So once the WAL holds as many pages as Litestream's checkpoint
//! threshold, the writer leaves the lock free until another connection has committed
//! (`PRAGMA data_version` moves) or a little longer than the busy handler's longest
//! sleep, at most once a second. The jobs queued meanwhile go into the next group commit.

use std::cell::Cell;
use std::os::raw::c_int;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::hooks::Wal;

/// Litestream's default `min-checkpoint-page-count`: from this WAL size on it checkpoints.
const CHECKPOINT_PAGES: c_int = 1000;
/// Longer than the 100 ms the busy handler sleeps between tries at worst.
const ROOM: Duration = Duration::from_millis(120);
/// How often the writer makes room at most, so a slow checkpointer costs little.
const EVERY: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(1);

thread_local! {
    /// The WAL's size in pages after the writer thread's last commit.
    static WAL_PAGES: Cell<c_int> = const { Cell::new(0) };
}

fn record_wal_pages(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// The writer thread's side of sharing the write lock with an outside checkpointer.
pub(super) struct OutsideCheckpointer {
    last_room: Option<Instant>,
}

impl OutsideCheckpointer {
    /// `Some` when `wal_autocheckpoint` is 0 (someone else checkpoints): watches the WAL's
    /// size on `conn`, which replaces SQLite's (already disabled) automatic checkpoint hook.
    pub(super) fn watch(conn: &Connection, autocheckpoint: u32) -> Option<Self> {
        if autocheckpoint != 0 {
            return None;
        }
        conn.wal_hook(Some(record_wal_pages));
        Some(Self { last_room: None })
    }

    /// After a commit: if the WAL is due for the outside checkpoint and no room was made
    /// within [`EVERY`], waits (lock free) until another connection commits or [`ROOM`]
    /// passes. Returns whether the other connection wrote.
    pub(super) fn make_room(&mut self, conn: &Connection) -> bool {
        if WAL_PAGES.with(Cell::get) < CHECKPOINT_PAGES
            || self.last_room.is_some_and(|at| at.elapsed() < EVERY)
        {
            return false;
        }
        let started = Instant::now();
        self.last_room = Some(started);
        let Ok(version) = data_version(conn) else {
            return false;
        };
        while started.elapsed() < ROOM {
            std::thread::sleep(POLL);
            if data_version(conn).is_ok_and(|now| now != version) {
                WAL_PAGES.with(|p| p.set(0));
                return true;
            }
        }
        false
    }
}

/// Changes whenever another connection commits to the database.
fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::config::Storage;

    fn write_pages(conn: &Connection, pages: u32) {
        conn.execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {pages})
             INSERT INTO t SELECT randomblob(3900) FROM n;"
        ))
        .unwrap();
    }

    #[test]
    fn a_large_wal_leaves_the_lock_to_an_outside_writer_once_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let storage = Storage {
            wal_autocheckpoint: 0,
            ..Storage::default()
        };
        let conn = super::super::open_writer(&path, &storage).unwrap();
        let mut outside = OutsideCheckpointer::watch(&conn, 0).expect("watching at 0");
        assert!(OutsideCheckpointer::watch(&conn, 1000).is_none());
        conn.execute_batch("CREATE TABLE t (v BLOB)").unwrap();
        write_pages(&conn, 10);
        assert!(!outside.make_room(&conn), "a small WAL needs no room");

        write_pages(&conn, 1100);
        // The outside checkpointer's write lands while the writer waits.
        let other = std::thread::spawn(move || {
            let c = Connection::open(&path).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            c.execute_batch("CREATE TABLE seq (n INTEGER)").unwrap();
        });
        assert!(
            outside.make_room(&conn),
            "the other connection's commit was seen"
        );
        other.join().unwrap();

        write_pages(&conn, 1100);
        assert!(
            !outside.make_room(&conn),
            "no second wait within a second of the first"
        );
    }
}
