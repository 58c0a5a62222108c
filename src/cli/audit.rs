//! `audiostudio audit verify`: walk the hash chain of the audit log.

use std::io::Write;
use std::process::ExitCode;

use super::Cli;
use crate::platform::audit::{self, Verification};
use crate::platform::db::{Db, DbError};

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
            let db = Db::open(&settings)?;
            match db.read_blocking(|c| Ok::<_, DbError>(audit::verify(c)?))? {
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
