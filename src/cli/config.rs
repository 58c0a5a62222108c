//! `audiostudio config`: print the effective settings, secrets masked.

use std::io::Write;
use std::process::ExitCode;

use super::Cli;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let figment = cli.figment();
    let settings = crate::platform::config::Settings::from_figment(&figment)?;
    let rocket: rocket::Config = figment.extract()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "profile = {}", rocket.profile)?;
    writeln!(out, "address = {}", rocket.address)?;
    writeln!(out, "port = {}", rocket.port)?;
    writeln!(
        out,
        "ip_header = {}",
        rocket
            .ip_header
            .as_ref()
            .map_or("(off: client IP is the peer address)", |h| h.as_str())
    )?;
    for (key, value) in settings.describe() {
        writeln!(out, "{key} = {value}")?;
    }
    Ok(ExitCode::SUCCESS)
}
