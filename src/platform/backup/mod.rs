//! Online backups of the live database, and the checks a backup (or any file offered for
//! a restore) must pass. The server keeps running and taking writes during a backup.
//!
//! A copy reads one consistent snapshot: the source connection opens a read transaction
//! first and SQLite's online backup API copies the pages in steps inside it. In WAL mode a
//! reader never blocks the writer, and because the snapshot is pinned, writes made by the
//! server meanwhile neither restart the copy nor appear in it. (The WAL cannot be
//! checkpointed past the snapshot while the copy runs; it shrinks again afterwards.) The
//! copy goes to a temporary name beside the destination, is switched to rollback-journal
//! mode (one self-contained file), fsynced, renamed into place and its directory fsynced.

mod restore;
mod verify;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

pub use restore::{Restored, restore};
pub use verify::{Verified, VerifyError, verify};

/// Pages copied per backup step: 4 MiB at the default 4 KiB page size.
const PAGES_PER_STEP: i32 = 1024;

/// How a copy is taken; `BackupApi` is the default (see the module docs), `VacuumInto` writes
/// a compacted copy in one statement (no progress to show).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    #[default]
    BackupApi,
    VacuumInto,
}

/// A finished copy.
#[derive(Debug, Clone)]
pub struct Copied {
    pub path: PathBuf,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// A backup in `<data_dir>/backups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// Modification time, milliseconds since the epoch.
    pub modified_ms: i64,
}

/// Where the backups of a data dir are kept.
pub fn backups_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("backups")
}

/// The file name for a backup taken at `now_ms`: `20261203T120000Z.db`.
pub fn file_name(now_ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    format!("{}.db", at.format(&format).unwrap_or_default())
}

/// The longest backup name the admin API accepts.
const MAX_NAME_LEN: usize = 100;

/// Whether `name` may name a backup in the backups dir: 1 to 100 of `A-Z a-z 0-9 . _ -`,
/// ending in `.db`, not starting with a dot (no paths, no hidden or partial files).
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && name.len() > ".db".len()
        && name.ends_with(".db")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The backup called `name` in `<data_dir>/backups`: a regular file there (not a link),
/// as `list` shows it; `None` for anything else.
pub fn find(data_dir: &Path, name: &str) -> anyhow::Result<Option<Listed>> {
    if !valid_name(name) {
        return Ok(None);
    }
    Ok(list(data_dir)?.into_iter().find(|b| b.name == name))
}

/// The data dirs with a backup being taken by this process.
static RUNNING: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// The right to take a backup of one data dir: one at a time per data dir in a process.
pub struct Running(PathBuf);

impl Running {
    /// `None` while another backup of `data_dir` runs.
    pub fn begin(data_dir: &Path) -> Option<Running> {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        let dirs = running.get_or_insert_with(HashSet::new);
        dirs.insert(data_dir.to_path_buf())
            .then(|| Running(data_dir.to_path_buf()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dirs) = running.as_mut() {
            dirs.remove(&self.0);
        }
    }
}

/// Backs `database` up into `<data_dir>/backups/<timestamp>.db` (`<timestamp>-2.db` and
/// so on when a backup of that second exists).
pub fn create(
    data_dir: &Path,
    database: &Path,
    now_ms: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<Copied> {
    let dir = backups_dir(data_dir);
    fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let first = file_name(now_ms);
    let stem = first.trim_end_matches(".db");
    let dest = std::iter::once(first.clone())
        .chain((2..100).map(|n| format!("{stem}-{n}.db")))
        .map(|name| dir.join(name))
        .find(|path| !path.exists())
        .ok_or_else(|| anyhow::anyhow!("too many backups named {stem}*"))?;
    copy(database, &dest, Method::default(), progress)
}

/// The backups in `<data_dir>/backups`, newest first.
pub fn list(data_dir: &Path) -> anyhow::Result<Vec<Listed>> {
    let dir = backups_dir(data_dir);
    let entries = match fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut listed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata()?;
        if !meta.is_file() || !name.ends_with(".db") || name.starts_with('.') {
            continue;
        }
        let modified = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?;
        listed.push(Listed {
            name,
            path: entry.path(),
            bytes: meta.len(),
            modified_ms: i64::try_from(modified.as_millis()).unwrap_or(i64::MAX),
        });
    }
    listed.sort_by(|a, b| order(&b.name).cmp(&order(&a.name)));
    Ok(listed)
}

/// Names sort by their time, then by the `-N` a second backup of that second gets.
fn order(name: &str) -> (&str, u32) {
    let stem = name.trim_end_matches(".db");
    if let Some((time, n)) = stem.rsplit_once('-')
        && let Ok(n) = n.parse()
    {
        return (time, n);
    }
    (stem, 1)
}

/// Copies the live `database` to `dest` (which must not exist) as described in the module docs;
/// `progress(done_pages, total_pages)` after each step.
pub fn copy(
    database: &Path,
    dest: &Path,
    method: Method,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<Copied> {
    if !database.is_file() {
        anyhow::bail!("no database at {}", database.display());
    }
    if dest.exists() {
        anyhow::bail!("{} exists already; choose a new name", dest.display());
    }
    let started = Instant::now();
    let partial = partial_name(dest)?;
    let result =
        write_partial(database, &partial, method, progress).and_then(|()| publish(&partial, dest));
    if result.is_err() {
        let _ = fs::remove_file(&partial);
        let _ = fs::remove_file(journal_of(&partial));
    }
    result?;
    Ok(Copied {
        path: dest.to_path_buf(),
        bytes: fs::metadata(dest)?.len(),
        elapsed: started.elapsed(),
    })
}

/// `.<name>.partial` in the destination's directory, so the final rename stays on one filesystem.
fn partial_name(dest: &Path) -> anyhow::Result<PathBuf> {
    let name = dest
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} is not a file name", dest.display()))?;
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(format!(".partial-{}", std::process::id()));
    Ok(dest.with_file_name(partial))
}

fn journal_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-journal");
    PathBuf::from(name)
}

fn write_partial(
    database: &Path,
    partial: &Path,
    method: Method,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<()> {
    let source = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(Duration::from_secs(10))?;
    match method {
        Method::BackupApi => backup_api(&source, partial, progress)?,
        Method::VacuumInto => {
            let target = partial
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", partial.display()))?;
            source.execute("VACUUM INTO ?1", [target])?;
        }
    }
    // One self-contained file: no -wal beside it to lose when it is moved or downloaded.
    let copy = Connection::open(partial)?;
    copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
    drop(copy);
    fs::File::open(partial)?.sync_all()?;
    Ok(())
}

/// Steps through the pages inside one read transaction on `source` (the snapshot).
fn backup_api(
    source: &Connection,
    partial: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<()> {
    source.execute_batch("BEGIN DEFERRED; SELECT COUNT(*) FROM sqlite_schema;")?;
    let mut target = Connection::open(partial)?;
    {
        let backup = Backup::new(source, &mut target)?;
        loop {
            let step = backup.step(PAGES_PER_STEP)?;
            let p = backup.progress();
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            let remaining = u64::try_from(p.remaining).unwrap_or(0);
            progress(total.saturating_sub(remaining), total);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                // Busy/Locked cannot last (the snapshot is ours); wait a moment and go on.
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    source.execute_batch("COMMIT;")?;
    Ok(())
}

/// Renames `partial` to `dest` and makes the rename durable.
fn publish(partial: &Path, dest: &Path) -> anyhow::Result<()> {
    if dest.exists() {
        anyhow::bail!(
            "{} appeared during the backup; not replaced",
            dest.display()
        );
    }
    fs::rename(partial, dest)?;
    sync_dir(dest)
}

/// fsyncs the directory holding `path`, so a rename in it survives a power cut.
pub fn sync_dir(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}
