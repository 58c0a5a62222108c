//! `audiostudio audit verify`: walk the hash chain of the audit log, up to the head kept
//! (outside the database, in `<data_dir>/audit_head`) by the last successful verify.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::Cli;
use crate::platform::audit::{self, Head, Verification};
use crate::platform::db::{Db, DbError};

/// The file, in the data directory, keeping the head of the last verified chain. Outside
/// the database on purpose: whoever can edit the database cannot hide the removal of the
/// newest rows from it (a copy kept off the machine protects against more).
pub const HEAD_FILE: &str = "audit_head";

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Recompute every link of the audit log and check it still reaches the head kept by
    /// the last verify; exits non-zero at the first broken link or a truncated log
    Verify,
}

pub fn run(cli: &Cli, command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Verify => {
            let settings = cli.settings()?;
            let path = settings.database_path();
            anyhow::ensure!(
                path.exists(),
                "no database at {}\nfix: pass the server's --data-dir, or run `audiostudio migrate` to create one",
                path.display()
            );
            let head_path = settings.storage.data_dir.join(HEAD_FILE);
            let kept = read_head(&head_path)?;
            let db = Db::open(&settings)?;
            let outcome =
                db.read_blocking(|c| Ok::<_, DbError>(audit::verify(c, kept.as_ref())?))?;
            report(&head_path, kept.as_ref(), outcome)
        }
    }
}

fn report(
    head_path: &Path,
    kept: Option<&Head>,
    outcome: Verification,
) -> anyhow::Result<ExitCode> {
    match outcome {
        Verification::Intact { rows, head } => {
            let mut out = std::io::stdout();
            writeln!(out, "audit log intact: {rows} rows verified")?;
            match &head {
                Some(head) => writeln!(out, "head: row {} hash {}", head.id, head.hash)?,
                None => writeln!(out, "head: none (the log is empty)")?,
            }
            if kept.is_none() {
                writeln!(
                    out,
                    "no head was kept before: removal of the newest rows is detected from now on"
                )?;
            }
            if let Some(head) = &head {
                write_head(head_path, head)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Verification::Broken { row_id, reason } => {
            writeln!(
                std::io::stderr(),
                "audit log BROKEN at row {row_id}: {reason}"
            )?;
            Ok(ExitCode::from(2))
        }
    }
}

/// The head kept by the last verify, if any: `<id> <hash>` on one line.
fn read_head(path: &Path) -> anyhow::Result<Option<Head>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let unreadable = || {
        anyhow::anyhow!(
            "{} is not `<row id> <hash>`\nfix: restore it from a copy, or delete it to start over from the current log (then compare the printed head with one kept elsewhere)",
            path.display()
        )
    };
    let (id, hash) = text.trim().split_once(' ').ok_or_else(unreadable)?;
    let id = id.parse().map_err(|_| unreadable())?;
    let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    anyhow::ensure!(valid, unreadable());
    Ok(Some(Head {
        id,
        hash: hash.to_owned(),
    }))
}

/// Replaces the kept head atomically (a temporary file renamed over it), readable by the
/// owner only.
fn write_head(path: &Path, head: &Head) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    writeln!(file, "{} {}", head.id, head.hash)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}
