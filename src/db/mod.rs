//! The database handle: one writer connection owned by a dedicated thread, plus a small read-only pool.
//!
//! Every write runs as a closure inside an IMMEDIATE transaction on the writer thread,
//! so the async executor never blocks on SQLite and writes never see SQLITE_BUSY from
//! inside the process. Jobs arrive over a channel; a later change can batch several
//! jobs into one group commit (each in a savepoint) without touching any caller.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::config::{Settings, Synchronous};

mod embedded {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("{0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
}

type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// A cheap, cloneable handle to the database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Option<mpsc::Sender<WriteJob>>,
    writer_thread: Option<JoinHandle<()>>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    read_permits: Semaphore,
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
        let path = settings.database_path();
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create data_dir {}: {e}\nfix: point ROCKET_DATA_DIR (or --data-dir) at a writable directory",
                settings.data_dir.display()
            )
        })?;
        let mut writer = open_writer(&path, settings.synchronous)?;
        migrate(&mut writer)?;
        Self::start(writer, &path, settings.read_pool_size)
    }

    fn start(writer: Connection, path: &Path, pool_size: u32) -> anyhow::Result<Db> {
        let readers = r2d2::Pool::builder()
            .max_size(pool_size)
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(
                SqliteConnectionManager::file(path)
                    .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .with_init(|c| {
                        c.execute_batch(
                            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;",
                        )
                    }),
            )?;
        let (tx, rx) = mpsc::channel::<WriteJob>(WRITE_QUEUE);
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(writer, rx))?;
        Ok(Db {
            inner: Arc::new(Inner {
                writer: Some(tx),
                writer_thread: Some(thread),
                readers,
                read_permits: Semaphore::new(pool_size as usize),
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
        let (reply, answer) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn: &mut Connection| {
            let result = run_in_transaction(conn, f);
            let _ = reply.send(result);
        });
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
        let _permit = self
            .inner
            .read_permits
            .acquire()
            .await
            .map_err(|_| closed())?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.readers.get().map_err(DbError::from)?;
            f(&conn)
        })
        .await
        .map_err(|e| DbError::Unavailable(format!("database reader stopped: {e}")))?
    }

    /// The highest applied migration version.
    pub async fn schema_version(&self) -> Result<i64, DbError> {
        self.read(|c| Ok::<_, DbError>(schema_version(c)?)).await
    }
}

fn closed() -> DbError {
    DbError::Unavailable("the database is shutting down".into())
}

fn run_in_transaction<T, E, F>(conn: &mut Connection, f: F) -> Result<T, E>
where
    E: From<DbError>,
    F: FnOnce(&Transaction<'_>) -> Result<T, E>,
{
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(DbError::from)?;
    let value = f(&tx)?;
    tx.commit().map_err(DbError::from)?;
    Ok(value)
}

fn run_writer(mut conn: Connection, mut jobs: mpsc::Receiver<WriteJob>) {
    while let Some(job) = jobs.blocking_recv() {
        // A panicking job rolls back its transaction (Transaction's Drop) and fails only
        // its own caller; the writer, and every later write, carries on.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn))).is_err() {
            tracing::error!("a database write panicked; its transaction was rolled back");
        }
    }
    // Fold the WAL back into the main file so a stopped server leaves one clean file.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(error = %e, "checkpoint at shutdown failed");
    }
}

/// Opens the single writer connection with every pragma set in one place.
pub fn open_writer(path: &Path, synchronous: Synchronous) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
        synchronous.pragma()
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

pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM refinery_schema_history",
        [],
        |r| r.get(0),
    )
}
