//! The checks a backup, or any file offered for a restore, must pass before it is trusted:
//! an SQLite file, complete, intact, audiostudio's, from a schema this binary knows, and
//! (through the caller's `ledger` check, which lives with the tokens feature) with a
//! consistent ledger. The file is opened immutable: nothing is written next to it.

use std::fs;
use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::platform::db;

const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What a file that passed looks like.
#[derive(Debug, Clone)]
pub struct Verified {
    pub bytes: u64,
    pub schema_version: i64,
    /// What the ledger check said (e.g. how many users it checked).
    pub ledger: String,
}

/// Why a file is not a usable audiostudio database; each message names the problem.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}: no such file")]
    Missing(String),
    #[error("{0}: not an SQLite database (its header is not \"SQLite format 3\")")]
    NotSqlite(String),
    #[error("{path}: truncated: its header says {expected} bytes, the file has {actual}")]
    Truncated {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{0}: has a non-empty -wal file beside it whose commits would be ignored; open it with sqlite3 once (or copy it with `audiostudio backup`) first"
    )]
    PendingWal(String),
    #[error("{path}: damaged: integrity_check says: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("{path}: an SQLite database but not audiostudio's: {detail}")]
    Foreign { path: String, detail: String },
    #[error(
        "{path}: schema version {found} is newer than this binary's {supported}; run a newer audiostudio"
    )]
    NewerSchema {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("{path}: the ledger check failed: {detail}")]
    Ledger { path: String, detail: String },
    #[error("{path}: cannot be read: {detail}")]
    Unreadable { path: String, detail: String },
}

/// Runs every check on `path`; `ledger` runs last, on the opened copy.
pub fn verify(
    path: &Path,
    ledger: &dyn Fn(&Connection) -> Result<String, String>,
) -> Result<Verified, VerifyError> {
    let name = path.display().to_string();
    let bytes = check_header(path, &name)?;
    let conn = open_immutable(path).map_err(|e| classify(&name, &e))?;
    let rows = integrity(&conn).map_err(|e| classify(&name, &e))?;
    if rows != ["ok"] {
        return Err(VerifyError::Corrupt {
            path: name,
            detail: rows.join("; "),
        });
    }
    let schema_version = check_schema(&conn, &name)?;
    let ledger = ledger(&conn).map_err(|detail| VerifyError::Ledger {
        path: name.clone(),
        detail,
    })?;
    Ok(Verified {
        bytes,
        schema_version,
        ledger,
    })
}

/// The magic string, and a size matching the page count the header states.
fn check_header(path: &Path, name: &str) -> Result<u64, VerifyError> {
    let unreadable = |e: std::io::Error| VerifyError::Unreadable {
        path: name.to_owned(),
        detail: e.to_string(),
    };
    let mut file = match fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VerifyError::Missing(name.to_owned()));
        }
        other => other.map_err(unreadable)?,
    };
    let actual = file.metadata().map_err(unreadable)?.len();
    let mut header = [0u8; 100];
    if file.read_exact(&mut header).is_err() || &header[..16] != MAGIC {
        return Err(VerifyError::NotSqlite(name.to_owned()));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    // The page count is trusted only when written with the current change counter.
    let count_valid = header[24..28] == header[92..96] && pages > 0;
    let expected = if count_valid { pages * page_size } else { 0 };
    if actual < expected || (page_size > 0 && actual % page_size != 0) {
        return Err(VerifyError::Truncated {
            path: name.to_owned(),
            expected: expected.max(actual.next_multiple_of(page_size.max(1))),
            actual,
        });
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(VerifyError::PendingWal(name.to_owned()));
    }
    Ok(actual)
}

/// Read-only and immutable: no -wal, -shm or journal is created or looked at.
fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

fn integrity(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check(20)")?;
    stmt.query_map([], |r| r.get::<_, String>(0))?.collect()
}

fn classify(name: &str, e: &rusqlite::Error) -> VerifyError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => VerifyError::NotSqlite(name.to_owned()),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => VerifyError::Corrupt {
            path: name.to_owned(),
            detail: e.to_string(),
        },
        _ => VerifyError::Unreadable {
            path: name.to_owned(),
            detail: e.to_string(),
        },
    }
}

/// refinery's history: present, every migration this binary knows applied under its name,
/// and nothing newer than this binary.
fn check_schema(conn: &Connection, name: &str) -> Result<i64, VerifyError> {
    let foreign = |detail: String| VerifyError::Foreign {
        path: name.to_owned(),
        detail,
    };
    let applied = db::applied_migrations(conn)
        .map_err(|e| foreign(format!("no readable refinery_schema_history ({e})")))?;
    let found = applied.iter().map(|(v, _)| *v).max().unwrap_or(0);
    let supported = db::known_migrations();
    let latest = supported.iter().map(|(v, _)| *v).max().unwrap_or(0);
    if found > latest {
        return Err(VerifyError::NewerSchema {
            path: name.to_owned(),
            found,
            supported: latest,
        });
    }
    for (version, migration) in &applied {
        let ours = supported.iter().find(|(v, _)| v == version);
        if ours.is_none_or(|(_, n)| n != migration) {
            return Err(foreign(format!(
                "migration {version} ({migration}) is not one of this binary's"
            )));
        }
    }
    if applied.is_empty() {
        return Err(foreign("no migration has been applied".into()));
    }
    Ok(found)
}
