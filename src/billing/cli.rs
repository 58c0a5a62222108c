//! The `audiostudio stripe` commands: copy the catalogue into Stripe.

use std::io::Write;
use std::process::ExitCode;

use crate::billing::catalog;
use crate::billing::stripe::Stripe;
use crate::cli::Cli;
use crate::clock::{Clock, SystemClock};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create the Stripe Product and Price of every active plan and token pack that has
    /// none yet, and record their ids (safe to re-run; free plans are never synced)
    SyncCatalog {
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cli: &Cli, command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::SyncCatalog { json } => sync_catalog(cli, *json),
    }
}

fn sync_catalog(cli: &Cli, json: bool) -> anyhow::Result<ExitCode> {
    let settings = cli.settings()?;
    let stripe = Stripe::from_settings(&settings).map_err(|e| {
        anyhow::anyhow!("{e}\nfix: set STRIPE_SECRET_KEY (sk_test_... for test mode) and run again")
    })?;
    let conn = crate::cli::open_database(cli)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(catalog::sync(&conn, &stripe, SystemClock.now_ms()))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for item in &report.synced {
        writeln!(
            out,
            "{} {}: product {}{}, price {} (created)",
            item.kind,
            item.id,
            item.product_id,
            if item.created_product {
                " (created)"
            } else {
                ""
            },
            item.price_id
        )?;
    }
    for id in &report.already_synced {
        writeln!(out, "{id}: already in Stripe")?;
    }
    for id in &report.free {
        writeln!(out, "{id}: free plan, not sold through Stripe")?;
    }
    writeln!(
        out,
        "{} synced, {} already in Stripe, {} free",
        report.synced.len(),
        report.already_synced.len(),
        report.free.len()
    )?;
    Ok(ExitCode::SUCCESS)
}
