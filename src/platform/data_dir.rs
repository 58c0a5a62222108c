//! The data directory holds the database and the generated secrets: only the user running
//! audiostudio may read it. Before anything in it is created or opened, the process umask
//! becomes 0o077 (every file audiostudio creates is 0600, every directory 0700); a missing
//! directory is created 0700, an existing one open to others is tightened to 0700, and a
//! file in it that others may read or write stops the process with the fix to apply.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Permission bits of the group and of everyone else.
const OTHERS: u32 = 0o077;

/// Restricts the umask, then creates or checks `dir` as described in the module docs.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    restrict_umask();
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir),
        Err(e) => Err(cannot_use(dir, &e)),
        Ok(meta) if !meta.is_dir() => Err(anyhow::anyhow!(
            "data_dir {} is not a directory\nfix: point ROCKET_DATA_DIR (or --data-dir) at a directory",
            dir.display()
        )),
        Ok(meta) => {
            tighten_dir(dir, meta.permissions().mode());
            refuse_exposed_files(dir)
        }
    }
}

/// From now on, files this process creates are readable by its user only.
fn restrict_umask() {
    // SAFETY: umask only replaces the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

fn create(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| cannot_use(dir, &e))
}

fn cannot_use(dir: &Path, e: &std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot create data_dir {}: {e}\nfix: point ROCKET_DATA_DIR (or --data-dir) at a writable directory",
        dir.display()
    )
}

/// A directory open to others only reveals file names (the files are checked apart), so it
/// is tightened rather than refused; the warning says so.
fn tighten_dir(dir: &Path, mode: u32) {
    if mode & OTHERS == 0 {
        return;
    }
    match fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
        Ok(()) => tracing::warn!(
            data_dir = %dir.display(),
            was = format!("{:o}", mode & 0o777),
            "the data directory was open to other users; its mode is now 0700"
        ),
        Err(e) => tracing::warn!(
            data_dir = %dir.display(),
            mode = format!("{:o}", mode & 0o777),
            error = %e,
            "the data directory is open to other users and cannot be changed: chmod 700 it"
        ),
    }
}

/// Stops the start when a file in `dir` (the database, its WAL, a secret, a backup) is
/// readable or writable by the group or everyone: it may already have been read, so an
/// operator should fix the modes and decide what to rotate.
fn refuse_exposed_files(dir: &Path) -> anyhow::Result<()> {
    let exposed = exposed_files(dir).map_err(|e| cannot_use(dir, &e))?;
    if exposed.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = exposed
        .iter()
        .map(|(path, mode)| format!("  {} (mode {:o})", path.display(), mode & 0o777))
        .collect();
    Err(anyhow::anyhow!(
        "refusing to start: files in data_dir {} are open to other users (readable or writable):\n{}\n\
         They hold the database (password hashes, email links) and secrets, which may already have been read.\n\
         fix: chmod 700 {dir} && chmod 600 {dir}/*  then consider rotating JWT_SECRET (or deleting {dir}/jwt_secret, which logs everyone out)",
        dir.display(),
        list.join("\n"),
        dir = dir.display(),
    ))
}

/// Regular files directly in `dir` (links followed) with any group or other permission bit.
fn exposed_files(dir: &Path) -> std::io::Result<Vec<(PathBuf, u32)>> {
    let mut exposed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if meta.is_file() && mode & OTHERS != 0 {
            exposed.push((path, mode));
        }
    }
    exposed.sort();
    Ok(exposed)
}

/// The lock a running server holds on its data dir (an exclusive `flock`, released by the
/// kernel when the process ends, however it ends); `restore` refuses while it is held.
#[derive(Debug)]
pub struct DataDirLock {
    _file: fs::File,
}

/// The lock file in `dir`.
pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("audiostudio.lock")
}

/// Takes the data dir's lock without waiting, writing our pid into the lock file; fails
/// naming the holder when another process has it.
pub fn lock(dir: &Path) -> anyhow::Result<DataDirLock> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    let path = lock_path(dir);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor we own; it does not touch memory.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        anyhow::bail!(
            "data_dir {} is in use by a running audiostudio server (pid {}, lock {}); stop it first",
            dir.display(),
            pid.trim(),
            path.display()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(DataDirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/data");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        fs::write(dir.join("f"), "x").unwrap();
        assert_eq!(mode(&dir.join("f")), 0o600, "the umask applies");
    }

    #[test]
    fn an_open_directory_is_tightened_and_an_exposed_file_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);

        let db = dir.join("audiostudio.db");
        fs::write(&db, "").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o640)).unwrap();
        let err = prepare(&dir).unwrap_err().to_string();
        assert!(err.contains("audiostudio.db (mode 640)"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).unwrap();
        prepare(&dir).unwrap();
    }

    #[test]
    fn a_second_lock_on_a_data_dir_is_refused_until_the_first_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("in use by a running audiostudio server"),
            "{err}"
        );
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        lock(dir.path()).unwrap();
    }
}
