//! `audiostudio serve`: run the HTTP server until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use rocket::figment::providers::Serialized;

use super::Cli;

#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Port to listen on [default: 8000, or ROCKET_PORT]
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to bind [default: 127.0.0.1, or ROCKET_ADDRESS]
    #[arg(long)]
    pub address: Option<std::net::IpAddr>,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let mut figment = cli.figment();
    if let Some(port) = args.port {
        figment = figment.merge(Serialized::global("port", port));
    }
    if let Some(address) = args.address {
        figment = figment.merge(Serialized::global("address", address));
    }
    // Many systems start services at 1,024 open files; every connection needs one.
    match crate::platform::connections::raise_fd_limit() {
        Ok((soft, hard)) => tracing::info!(soft, hard, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
    // Held until the server has stopped: `restore` refuses while it is.
    let data_dir = crate::platform::config::Settings::from_figment(&figment)?
        .storage
        .data_dir;
    crate::platform::data_dir::prepare(&data_dir)?;
    let _lock = crate::platform::data_dir::lock(&data_dir)?;
    let rocket = crate::app::build(figment, crate::app::Deps::default())?;
    rocket::execute(async move {
        // Rocket stops on SIGTERM or Ctrl-C: in-flight requests finish, then workers stop.
        rocket
            .launch()
            .await
            .map_err(|e| anyhow::anyhow!("server failed: {e}"))
    })?;
    tracing::info!("server stopped");
    Ok(ExitCode::SUCCESS)
}
