//! The `audiostudio stripe` commands (being built for issue 4).

use std::process::ExitCode;

use crate::cli::Cli;

#[derive(Debug, clap::Subcommand)]
pub enum Command {}

pub fn run(_cli: &Cli, command: &Command) -> anyhow::Result<ExitCode> {
    match *command {}
}
