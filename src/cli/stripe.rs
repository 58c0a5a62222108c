//! The `audiostudio stripe` commands: copy the catalogue into Stripe, reconcile with it.

use std::io::Write;
use std::process::ExitCode;

use std::sync::Arc;

use super::Cli;
use crate::billing::ops;
use crate::billing::stripe::Stripe;
use crate::platform::clock::{Clock, SharedClock, SystemClock};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create the Stripe Product and Price of every active plan and token pack that has
    /// none yet, and record their ids (safe to re-run; free plans are never synced)
    SyncCatalog {
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Fetch each customer's subscriptions and recent paid invoices from Stripe and repair
    /// local state and missing token grants (for webhooks that never came); safe to re-run
    Reconcile {
        /// Only this user (email)
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
    },
}

pub fn run(cli: &Cli, command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::SyncCatalog { json } => sync_catalog(cli, *json),
        Command::Reconcile { user } => reconcile(cli, user.as_deref()),
    }
}

/// Fetches each customer's subscriptions and recent paid invoices from Stripe and
/// repairs local state and missing grants, as the webhooks would have.
fn reconcile(cli: &Cli, user: Option<&str>) -> anyhow::Result<ExitCode> {
    let settings = cli.settings()?;
    let stripe = Stripe::from_settings(&settings).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nfix: set STRIPE_SECRET_KEY (and STRIPE_API_BASE for a fake) and run again"
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let db = cli.db()?;
    let clock: SharedClock = Arc::new(SystemClock);
    let outcomes = runtime.block_on(ops::reconcile(&db, &stripe, clock, &settings, user))?;
    let Some(outcomes) = outcomes else {
        anyhow::bail!(
            "{} has no Stripe customer (or no such user)",
            user.unwrap_or_default()
        );
    };
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for ops::CustomerReconciled {
        email,
        customer,
        outcome,
    } in &outcomes
    {
        match outcome {
            Ok(r) => writeln!(
                out,
                "{email} ({customer}): {} subscriptions synced, {} paid invoices applied",
                r.subscriptions, r.paid_invoices
            )?,
            Err(e) => {
                failed += 1;
                writeln!(out, "{email} ({customer}): FAILED: {e}")?;
            }
        }
    }
    writeln!(
        out,
        "{} customers reconciled, {failed} failed",
        outcomes.len() - failed
    )?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn sync_catalog(cli: &Cli, json: bool) -> anyhow::Result<ExitCode> {
    let settings = cli.settings()?;
    let stripe = Stripe::from_settings(&settings).map_err(|e| {
        anyhow::anyhow!("{e}\nfix: set STRIPE_SECRET_KEY (sk_test_... for test mode) and run again")
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let db = cli.db()?;
    let report = runtime.block_on(ops::sync_catalog(&db, &stripe, SystemClock.now_ms()))?;
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
