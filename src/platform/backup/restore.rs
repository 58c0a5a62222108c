//! Putting a verified backup in place of the data dir's database, with no server running.

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{Verified, sync_dir, verify};
use crate::platform::data_dir;

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub verified: Verified,
    /// Where the previous database (and its -wal, -shm) now is, if there was one.
    pub kept_aside: Option<PathBuf>,
}

/// Verifies `file`, then, holding the data dir's lock (so no server runs or starts):
/// copies it beside `database`, keeps the current database aside as
/// `<database>.before-restore-<timestamp>` (its -wal and -shm renamed with it, so that copy
/// stays whole), and renames the copy over `database`. On any failure before the last
/// rename the current database is untouched.
pub fn restore(
    data_dir: &Path,
    database: &Path,
    file: &Path,
    now_ms: i64,
    ledger: &dyn Fn(&Connection) -> Result<String, String>,
) -> anyhow::Result<Restored> {
    data_dir::prepare(data_dir)?;
    let _lock =
        data_dir::lock(data_dir).map_err(|e| anyhow::anyhow!("refusing to restore: {e:#}"))?;
    let verified = verify(file, ledger).map_err(|e| anyhow::anyhow!("refusing to restore: {e}"))?;
    let incoming = with_suffix(database, ".restoring");
    copy_synced(file, &incoming)?;
    let kept_aside = if database.exists() {
        let stamp = super::file_name(now_ms);
        let aside = with_suffix(
            database,
            &format!(".before-restore-{}", stamp.trim_end_matches(".db")),
        );
        fs::hard_link(database, &aside).map_err(|e| {
            let _ = fs::remove_file(&incoming);
            anyhow::anyhow!(
                "cannot keep {} aside as {}: {e}",
                database.display(),
                aside.display()
            )
        })?;
        for companion in ["-wal", "-shm"] {
            let from = with_suffix(database, companion);
            if from.exists() {
                fs::rename(&from, with_suffix(&aside, companion))?;
            }
        }
        Some(aside)
    } else {
        None
    };
    fs::rename(&incoming, database)?;
    sync_dir(database)?;
    Ok(Restored {
        verified,
        kept_aside,
    })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn copy_synced(from: &Path, to: &Path) -> anyhow::Result<()> {
    let _ = fs::remove_file(to);
    fs::copy(from, to)
        .map_err(|e| anyhow::anyhow!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    // The data dir's files are private whatever the source's mode was.
    fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    fs::File::open(to)?.sync_all()?;
    Ok(())
}
