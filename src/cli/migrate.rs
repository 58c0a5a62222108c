//! `audiostudio migrate`: apply pending migrations and list what is applied.

use std::io::Write;
use std::process::ExitCode;

use super::Cli;
use crate::platform::db;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let settings = cli.settings()?;
    std::fs::create_dir_all(&settings.data_dir)?;
    let mut conn = db::open_writer(&settings.database_path(), settings.synchronous)?;
    let applied_now = db::migrate(&mut conn)?;
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
    for (version, name) in db::applied_migrations(&conn)? {
        writeln!(out, "V{version}  {name}")?;
    }
    Ok(ExitCode::SUCCESS)
}
