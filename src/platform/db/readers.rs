//! The read-only connections: a fixed set of threads, each owning one connection, taking
//! read jobs from one channel, the way the writer takes write jobs.
//!
//! A read is a short indexed query; handing it to a thread that already holds its
//! connection costs one channel send and one wake-up. The alternative, a blocking-pool
//! task that checks a connection out of a pool, costs a task, a pool lock and a second
//! wake-up for every read. Panics in a job are caught, so a thread serves until shutdown.

use std::path::Path;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, OpenFlags};

/// A read job: runs on a reader thread with that thread's connection.
pub(super) type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// The reader threads and the channel that feeds them.
pub(super) struct Readers {
    jobs: Option<Sender<ReadJob>>,
    threads: Vec<JoinHandle<()>>,
}

impl Readers {
    /// Opens `count` read-only connections to `path`, each on its own thread.
    pub(super) fn start(path: &Path, count: u32) -> anyhow::Result<Readers> {
        let (jobs, queue) = crossbeam_channel::unbounded::<ReadJob>();
        let threads = (0..count)
            .map(|i| {
                let conn = open_reader(path)?;
                let queue = queue.clone();
                Ok(std::thread::Builder::new()
                    .name(format!("sqlite-reader-{i}"))
                    .spawn(move || serve(&conn, &queue))?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Readers {
            jobs: Some(jobs),
            threads,
        })
    }

    /// Queues `job`; false when the readers have stopped.
    pub(super) fn send(&self, job: ReadJob) -> bool {
        self.jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok())
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        // Closing the channel ends each thread after the jobs already queued.
        self.jobs.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn serve(conn: &Connection, queue: &Receiver<ReadJob>) {
    for job in queue {
        // A panicking job drops its reply channel: its caller hears the database failed.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))).is_err() {
            tracing::error!("a database read panicked");
        }
    }
}

/// Opens one read-only connection with the readers' pragmas.
pub(super) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.set_prepared_statement_cache_capacity(super::STATEMENT_CACHE);
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;",
    )?;
    // A first read opens the WAL and its index now: when the process later runs out of
    // descriptors (an idle-socket flood), reads still have every file they need.
    conn.query_row("PRAGMA schema_version", [], |_| Ok(()))?;
    Ok(conn)
}
