//! `audiostudio migrate`: apply pending migrations and list what is applied.

use std::io::Write;
use std::process::ExitCode;

use super::Cli;
use crate::platform::db::{self, Db, DbError};

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let settings = cli.settings()?;
    let (db, applied_now) = Db::open_migrated(&settings)?;
    let applied = db.read_blocking(|c| Ok::<_, DbError>(db::applied_migrations(c)?))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "database: {}", settings.database_path().display())?;
    writeln!(
        out,
        "applied now: {}",
        if applied_now.is_empty() {
            "nothing (up to date)".to_owned()
        } else {
            format!("{applied_now:?}")
        }
    )?;
    for (version, name) in applied {
        writeln!(out, "V{version}  {name}")?;
    }
    Ok(ExitCode::SUCCESS)
}
