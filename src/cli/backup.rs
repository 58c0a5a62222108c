//! `audiostudio backup`: an online, verified copy of the database while the server runs;
//! `--verify FILE` checks any file; `--list` shows the backups in the data dir.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Cli;
use crate::platform::backup::{self, Method};
use crate::platform::clock::{Clock, SystemClock};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the copy (must not exist) [default: <data_dir>/backups/<UTC time>.db];
    /// with --verify, the file to check
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Only check FILE (integrity, schema version, ledger); exits non-zero on a problem
    #[arg(long, requires = "file", conflicts_with = "list")]
    pub verify: bool,
    /// List the backups in <data_dir>/backups, newest first
    #[arg(long, conflicts_with = "file")]
    pub list: bool,
    /// How to copy (for measurements): the online backup API or VACUUM INTO
    #[arg(long, hide = true, value_enum, default_value_t = CopyMethod::BackupApi)]
    pub method: CopyMethod,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CopyMethod {
    BackupApi,
    VacuumInto,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let settings = cli.settings()?;
    let data_dir = &settings.storage.data_dir;
    if args.list {
        return list(data_dir);
    }
    if let (true, Some(file)) = (args.verify, &args.file) {
        return verify(file);
    }
    let dest = match &args.file {
        Some(file) => file.clone(),
        None => {
            let dir = backup::backups_dir(data_dir);
            crate::platform::data_dir::prepare(data_dir)?;
            std::fs::create_dir_all(&dir)?;
            dir.join(backup::file_name(SystemClock.now_ms()))
        }
    };
    let method = match args.method {
        CopyMethod::BackupApi => Method::BackupApi,
        CopyMethod::VacuumInto => Method::VacuumInto,
    };
    let bar = progress_bar();
    let copied = backup::copy(
        &settings.database_path(),
        &dest,
        method,
        &mut |done, total| {
            if let Some(bar) = &bar {
                bar.set_length(total);
                bar.set_position(done);
            }
        },
    )?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    writeln!(
        std::io::stdout(),
        "backup written: {} ({} bytes in {} ms)",
        copied.path.display(),
        copied.bytes,
        copied.elapsed.as_millis()
    )?;
    verify(&copied.path)
}

/// A bar on stderr when it is a terminal; none in scripts and logs.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} copying [{bar:40}] {percent}% ({pos}/{len} pages, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

fn verify(file: &Path) -> anyhow::Result<ExitCode> {
    match backup::verify(file, &crate::tokens::ops::ledger_verdict) {
        Ok(v) => {
            writeln!(
                std::io::stdout(),
                "verified: {} ({} bytes): integrity ok, schema version {}, {}",
                file.display(),
                v.bytes,
                v.schema_version,
                v.ledger
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            writeln!(std::io::stderr(), "verification failed: {e}")?;
            Ok(ExitCode::from(2))
        }
    }
}

fn list(data_dir: &Path) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for b in backup::list(data_dir)? {
        writeln!(
            out,
            "{}\t{} bytes\t{}",
            b.path.display(),
            b.bytes,
            crate::platform::clock::rfc3339(b.modified_ms)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
