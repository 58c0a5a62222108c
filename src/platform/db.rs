//! The database handle: one writer connection owned by a dedicated thread, plus a small read-only pool.
//!
//! Every write runs as a closure on the writer thread, so the async executor never
//! blocks on SQLite and writes never see SQLITE_BUSY from inside the process. Jobs
//! arrive over a channel; the jobs already waiting when the writer gets to them share
//! one IMMEDIATE transaction (a group commit), each inside its own savepoint, so a job
//! that fails rolls back alone and one fsync serves many requests. A caller hears back
//! only after the commit that made its change durable.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::platform::config::{Settings, ShutdownCheckpoint, Storage};
use ::metrics::histogram;

use crate::platform::metrics::{DB_COMMIT, DB_READ_WAIT, DB_WRITE_BATCH};

mod after_commit;
mod outside_checkpoint;
mod readers;

pub use after_commit::after_commit;
use after_commit::{after_commit_len, settle_after_commit};

mod embedded {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
}

/// A write job: runs in its savepoint, says whether to keep its changes, and leaves a
/// `Reply` to deliver once the batch's commit has succeeded or failed.
type WriteJob = Box<dyn FnOnce(&Transaction<'_>) -> (bool, Reply) + Send>;
type Reply = Box<dyn FnOnce(Result<(), DbError>) + Send>;

/// Most jobs in one group commit; bounds how long the first of them waits.
const MAX_BATCH: usize = 256;

/// A cheap, cloneable handle to the database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Option<mpsc::Sender<WriteJob>>,
    writer_thread: Option<JoinHandle<()>>,
    readers: readers::Readers,
    read_permits: Semaphore,
    path: std::path::PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish queued jobs and close its connection.
        self.writer.take();
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}

const WRITE_QUEUE: usize = 1024;

impl Db {
    /// Opens (or creates) the database, applies pending migrations and starts the writer.
    pub fn open(settings: &Settings) -> anyhow::Result<Db> {
        Ok(Self::open_migrated(settings)?.0)
    }

    /// `open`, also saying which migration versions it applied now.
    pub fn open_migrated(settings: &Settings) -> anyhow::Result<(Db, Vec<i64>)> {
        let path = settings.database_path();
        // Before anything is created: the umask, a private directory, no file open to others.
        crate::platform::data_dir::prepare(&settings.storage.data_dir)?;
        let mut writer = open_writer(&path, &settings.storage)?;
        let applied = migrate(&mut writer)?;
        Ok((Self::start(writer, &path, &settings.storage)?, applied))
    }

    fn start(writer: Connection, path: &Path, storage: &Storage) -> anyhow::Result<Db> {
        let (pool_size, checkpoint) = (storage.read_pool_size, storage.wal_checkpoint_on_shutdown);
        let outside =
            outside_checkpoint::OutsideCheckpointer::watch(&writer, storage.wal_autocheckpoint);
        let readers = readers::Readers::start(path, pool_size)?;
        let (tx, rx) = mpsc::channel::<WriteJob>(WRITE_QUEUE);
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(writer, rx, checkpoint, outside))?;
        Ok(Db {
            inner: Arc::new(Inner {
                writer: Some(tx),
                writer_thread: Some(thread),
                readers,
                read_permits: Semaphore::new(pool_size as usize),
                path: path.to_path_buf(),
            }),
        })
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer thread: committed when it
    /// returns `Ok`, rolled back when it returns `Err`.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (job, answer) = write_job(f);
        let sender = self.inner.writer.as_ref().ok_or_else(closed)?;
        sender.send(job).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs `f` on a read-only connection, off the async executor.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let asked = Instant::now();
        let _permit = self
            .inner
            .read_permits
            .acquire()
            .await
            .map_err(|_| closed())?;
        let (reply, answer) = oneshot::channel();
        let job: readers::ReadJob = Box::new(move |conn| {
            histogram!(DB_READ_WAIT).record(asked.elapsed().as_secs_f64());
            let _ = reply.send(f(conn));
        });
        if !self.inner.readers.send(job) {
            return Err(E::from(closed()));
        }
        answer.await.map_err(|_| {
            E::from(DbError::Unavailable(
                "a database read failed on its reader thread".into(),
            ))
        })?
    }

    /// `write` for callers without an async executor (the CLI): waits on this thread.
    /// Must not be called from async code.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (job, answer) = write_job(f);
        let sender = self.inner.writer.as_ref().ok_or_else(closed)?;
        sender.blocking_send(job).map_err(|_| closed())?;
        answer.blocking_recv().map_err(|_| closed())?
    }

    /// `read` for callers without an async executor (the CLI), on this thread.
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<DbError>,
        F: FnOnce(&Connection) -> Result<T, E>,
    {
        // The CLI reads a few times per command: its own short-lived connection will do.
        let conn = readers::open_reader(&self.inner.path).map_err(DbError::from)?;
        f(&conn)
    }

    /// Write jobs sent to the writer and not yet taken up by it.
    pub fn write_queue_depth(&self) -> usize {
        self.inner
            .writer
            .as_ref()
            .map_or(0, |w| w.max_capacity() - w.capacity())
    }

    /// The highest applied migration version.
    pub async fn schema_version(&self) -> Result<i64, DbError> {
        self.read(|c| Ok::<_, DbError>(schema_version(c)?)).await
    }
}

/// Wraps `f` as a job for the writer, and the channel its result arrives on after the commit.
fn write_job<T, E, F>(f: F) -> (WriteJob, oneshot::Receiver<Result<T, E>>)
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job: WriteJob = Box::new(move |tx: &Transaction<'_>| {
        let result = f(tx);
        let keep = result.is_ok();
        let deliver: Reply = Box::new(move |commit: Result<(), DbError>| {
            let _ = reply.send(match commit {
                Err(e) if keep => Err(E::from(e)),
                _ => result,
            });
        });
        (keep, deliver)
    });
    (job, answer)
}

fn closed() -> DbError {
    DbError::Unavailable("the database is shutting down".into())
}

fn run_writer(
    mut conn: Connection,
    mut jobs: mpsc::Receiver<WriteJob>,
    checkpoint: ShutdownCheckpoint,
    mut outside: Option<outside_checkpoint::OutsideCheckpointer>,
) {
    after_commit::enable_on_this_thread();
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        histogram!(DB_WRITE_BATCH).record(batch.len() as f64);
        commit_batch(&mut conn, batch);
        // Whatever the outcome, nothing queued by this batch outlives it.
        settle_after_commit(0, false);
        if let Some(outside) = outside.as_mut() {
            outside.make_room(&conn);
        }
    }
    // By default the WAL folds back into the main file, so a stopped server leaves one clean
    // file. Under Litestream a TRUNCATE would reset the WAL under its read lock (waiting out
    // busy_timeout, or forcing a new generation if Litestream already stopped): PASSIVE or
    // off leaves the WAL to Litestream.
    let Some(statement) = checkpoint.statement() else {
        return;
    };
    if let Err(e) = conn.query_row(statement, [], |_| Ok(())) {
        tracing::warn!(error = %e, "checkpoint at shutdown failed");
    }
}

/// Runs a batch of jobs in one transaction, each in a savepoint, then commits once.
fn commit_batch(conn: &mut Connection, batch: Vec<WriteJob>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            // Dropping the jobs drops their reply channels: callers see the database as unavailable.
            tracing::error!(error = %e, "cannot begin a write transaction");
            return;
        }
    };
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        if let Err(e) = run_cached(&tx, &["SAVEPOINT job"]) {
            tracing::error!(error = %e, "cannot open a savepoint");
            continue;
        }
        let queued = after_commit_len();
        // A panicking job loses its savepoint and fails only its own caller.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&tx)));
        let keep = matches!(outcome, Ok((true, _)));
        let end: &[&str] = if keep {
            &["RELEASE job"]
        } else {
            &["ROLLBACK TO job", "RELEASE job"]
        };
        let closed = run_cached(&tx, end);
        if !keep {
            settle_after_commit(queued, false);
        }
        match outcome {
            Ok((_, reply)) => replies.push(reply),
            Err(_) => tracing::error!("a database write panicked; its changes were rolled back"),
        }
        // Some errors (I/O, disk full) make SQLite abandon the whole transaction, and a
        // savepoint that cannot be closed may still hold a failed job's writes. Either
        // way the batch is abandoned: the transaction rolls back when dropped, every
        // caller hears so, and the rest of the batch never runs (dropping a job tells
        // its caller the database is unavailable).
        if let Err(e) = &closed {
            tracing::error!(error = %e, "cannot close a savepoint; the group commit is abandoned");
        }
        if closed.is_err() || tx.is_autocommit() {
            for reply in replies {
                reply(Err(DbError::Unavailable(
                    "the write was rolled back by the database".into(),
                )));
            }
            return;
        }
    }
    let started = Instant::now();
    let committed = tx.commit().map_err(|e| e.to_string());
    histogram!(DB_COMMIT).record(started.elapsed().as_secs_f64());
    settle_after_commit(0, committed.is_ok());
    if let Err(e) = &committed {
        tracing::error!(error = %e, "a group commit failed; every write in it was lost");
    }
    for reply in replies {
        reply(
            committed.clone().map_err(|e| {
                DbError::Unavailable(format!("the write could not be committed: {e}"))
            }),
        );
    }
}

/// Prepared statements kept per connection: more than the hottest path (a spend with
/// its savepoints, idempotency record and ledger entry) uses.
pub(crate) const STATEMENT_CACHE: usize = 64;

/// Runs each statement (no parameters) through the connection's statement cache, so the
/// per-job savepoints are not parsed again for every job.
pub fn run_cached(conn: &Connection, statements: &[&str]) -> rusqlite::Result<()> {
    for sql in statements {
        conn.prepare_cached(sql)?.execute([])?;
    }
    Ok(())
}

/// Opens the single writer connection with every pragma set in one place.
pub fn open_writer(path: &Path, storage: &Storage) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // temp_store = MEMORY: the statement journal of each job's savepoint stays in memory
    // instead of spilling to a temporary file (a pwrite per page) in a large group commit.
    // wal_autocheckpoint = 0 leaves the checkpoints to Litestream: under a steady stream of
    // writes, one after every commit keeps taking the checkpoint lock Litestream needs.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {};",
        storage.synchronous.pragma(),
        storage.wal_autocheckpoint
    ))?;
    Ok(conn)
}

/// Applies pending migrations, each in its own transaction; returns the versions applied now.
pub fn migrate(conn: &mut Connection) -> anyhow::Result<Vec<i64>> {
    let report = embedded::migrations::runner().run(conn).map_err(|e| {
        anyhow::anyhow!("database migration failed, nothing of it was applied: {e}")
    })?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .collect())
}

/// Every migration that has been applied, oldest first, with its name.
pub fn applied_migrations(conn: &Connection) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut stmt =
        conn.prepare("SELECT version, name FROM refinery_schema_history ORDER BY version")?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Every migration this binary carries, as (version, name).
pub fn known_migrations() -> Vec<(i64, String)> {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| (i64::from(m.version()), m.name().to_owned()))
        .collect()
}

pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COALESCE(MAX(version), 0) FROM refinery_schema_history")?
        .query_row([], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_panicking_write_in_a_group_commit_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.storage.data_dir = dir.path().to_path_buf();
        let db = Db::open(&settings).unwrap();
        let mut writes = Vec::new();
        for i in 0..60i64 {
            let db = db.clone();
            writes.push(tokio::spawn(async move {
                db.write(move |tx| {
                    tx.execute(
                        "INSERT INTO settings (key, value, updated_at) VALUES (?1, 'v', 0)",
                        [format!("k{i}")],
                    )?;
                    match i % 3 {
                        0 => Ok(i),
                        1 => Err(DbError::Unavailable(format!("job {i} refuses"))),
                        _ if i == 5 => panic!("job {i} panics"),
                        _ => Ok(i),
                    }
                })
                .await
            }));
        }
        let mut kept = 0;
        for (i, write) in writes.into_iter().enumerate() {
            let result = write.await.unwrap();
            assert_eq!(result.is_ok(), i % 3 != 1 && i != 5, "job {i}: {result:?}");
            kept += usize::from(result.is_ok());
        }
        let stored: i64 = db
            .read(|c| {
                Ok::<_, DbError>(c.query_row("SELECT COUNT(*) FROM settings", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(stored, kept as i64);
        let five: i64 = db
            .read(|c| {
                Ok::<_, DbError>(c.query_row(
                    "SELECT COUNT(*) FROM settings WHERE key IN ('k1', 'k5')",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(five, 0);
    }

    /// The WAL's size in pages after 2,000 pages of commits on a writer opened with
    /// `wal_autocheckpoint = pages`.
    fn wal_pages_after_2000_written(pages: u32) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage {
            wal_autocheckpoint: pages,
            ..Storage::default()
        };
        let path = dir.path().join("t.db");
        let conn = open_writer(&path, &storage).unwrap();
        conn.execute_batch("CREATE TABLE t (v BLOB)").unwrap();
        for _ in 0..20 {
            conn.execute_batch(
                "BEGIN;
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
                 INSERT INTO t SELECT randomblob(3900) FROM n;
                 COMMIT;",
            )
            .unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("t.db-wal"))
            .unwrap()
            .len();
        wal / 4096
    }

    #[test]
    fn wal_autocheckpoint_zero_leaves_the_wal_to_litestream_and_the_default_bounds_it() {
        let bounded = wal_pages_after_2000_written(Storage::default().wal_autocheckpoint);
        let unbounded = wal_pages_after_2000_written(0);
        assert!(
            bounded < 1300,
            "default: the WAL restarts near 1000 pages, got {bounded}"
        );
        assert!(
            unbounded > 1900,
            "off: every page stays in the WAL, got {unbounded}"
        );
    }

    /// An in-memory database with the migrations up to `version` applied, to test the next.
    fn migrated_to(version: i32) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        embedded::migrations::runner()
            .set_target(refinery::Target::Version(version))
            .run(&mut conn)
            .unwrap();
        conn
    }

    /// The users search index (V11) is filled from the users and profiles already there.
    #[test]
    fn the_search_index_migration_indexes_the_users_already_stored() {
        let mut conn = migrated_to(10);
        conn.execute_batch(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at)
                 VALUES ('u1', 'ada@example.com', 'x', 0, 0), ('u2', 'grace@example.com', 'x', 0, 0);
             INSERT INTO user_profiles (user_id, display_name, updated_at) VALUES ('u2', 'Rear Admiral', 0);",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), [11, 12]);
        let found = |text: &str| -> Vec<String> {
            conn.prepare(
                "SELECT d.user_id FROM user_search s JOIN user_search_docs d ON d.doc = s.rowid
                 WHERE user_search MATCH ?1 ORDER BY d.user_id",
            )
            .unwrap()
            .query_map([text], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
        };
        assert_eq!(found("\"ada@\""), ["u1"]);
        assert_eq!(found("\"admiral\""), ["u2"]);
        assert_eq!(found("\"example.com\""), ["u1", "u2"]);
        assert!(found("\"nobody\"").is_empty());
    }

    /// The daily spend totals (V12) start from the spends and captures already stored.
    #[test]
    fn the_spend_per_day_migration_totals_the_ledger_already_stored() {
        let mut conn = migrated_to(11);
        let day = 86_400_000_i64;
        conn.execute_batch(&format!(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at)
                 VALUES ('u1', 'ada@example.com', 'x', 0, 0);
             INSERT INTO token_transactions (user_id, kind, amount, balance_after, created_at) VALUES
                 ('u1', 'grant', 100, 100, 5), ('u1', 'spend', -7, 93, 6), ('u1', 'spend', -8, 85, {d1}),
                 ('u1', 'hold', -30, 55, {d1}), ('u1', 'hold', -9, 46, {d1});
             INSERT INTO token_holds (id, user_id, amount, captured, feature, status, expires_at, created_at, settled_at, lots)
                 VALUES ('h1', 'u1', 30, 20, 'tts', 'captured', {d2}, {d1}, {d2}, '[]'),
                        ('h2', 'u1', 9, NULL, 'tts', 'released', {d2}, {d1}, {d2}, '[]');",
            d1 = day + 1,
            d2 = 2 * day + 1,
        ))
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), [12]);
        let totals: Vec<(i64, i64)> = conn
            .prepare("SELECT day, tokens FROM spend_per_day ORDER BY day")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(totals, [(0, 7), (1, 8), (2, 20)]);
    }
}
