//! `audiostudio restore FILE`: replace the data dir's database with a verified backup.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::Cli;
use crate::platform::backup;
use crate::platform::clock::{Clock, SystemClock};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup to restore (left in place; a copy of it becomes the database)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let settings = cli.settings()?;
    let restored = backup::restore(
        &settings.storage.data_dir,
        &settings.database_path(),
        &args.file,
        SystemClock.now_ms(),
        &crate::tokens::ops::ledger_verdict,
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "restored {} into {}: schema version {}, {}",
        args.file.display(),
        settings.database_path().display(),
        restored.verified.schema_version,
        restored.verified.ledger
    )?;
    if let Some(aside) = restored.kept_aside {
        writeln!(out, "the previous database is kept as {}", aside.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
