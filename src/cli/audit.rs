//! `audiostudio audit verify`: walk the hash chain of the audit log.

use std::io::Write;
use std::process::ExitCode;

use super::Cli;
use crate::platform::audit::{self, Verification};
use crate::platform::db;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Recompute every link of the audit log; exits non-zero at the first broken one
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
            let mut conn = db::open_writer(&settings.database_path(), settings.synchronous)?;
            db::migrate(&mut conn)?;
            match audit::verify(&conn)? {
                Verification::Intact { rows } => {
                    writeln!(std::io::stdout(), "audit log intact: {rows} rows verified")?;
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
    }
}
