//! `audiostudio webhooks`: list stored Stripe events and requeue failed ones for the running server's worker.

use std::io::Write;
use std::process::ExitCode;

use clap::builder::TypedValueParser;
use strum::VariantNames;

use super::Cli;
use crate::platform::audit::Actor;
use crate::platform::clock::{Clock, SystemClock};
use crate::webhooks::EventStatus;
use crate::webhooks::ops;
use crate::webhooks::store::RequeueError;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List stored events, newest first: Stripe event id, type, status, attempts, last error
    List {
        /// Only events with this status
        // The possible values are the enum's own names, so parsing them back cannot fail.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(EventStatus::VARIANTS)
            .map(|s| s.parse::<EventStatus>().expect("a possible value")))]
        status: Option<EventStatus>,
        /// At most this many events
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
    },
    /// Requeue a failed or ignored event (or every failed one) with fresh attempts; the
    /// running server's worker processes it on its next tick (audited)
    #[command(group(clap::ArgGroup::new("which").required(true).args(["event_id", "failed"])))]
    Replay {
        /// The Stripe event id (evt_...)
        event_id: Option<String>,
        /// Every failed event
        #[arg(long)]
        failed: bool,
    },
}

pub fn run(cli: &Cli, command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::List { status, limit } => list(cli, *status, *limit)?,
        Command::Replay { event_id, failed } => replay(cli, event_id.as_deref(), *failed)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn list(cli: &Cli, status: Option<EventStatus>, limit: u32) -> anyhow::Result<()> {
    let db = cli.db()?;
    let events = runtime()?.block_on(ops::list(&db, status, limit))?;
    let mut out = std::io::stdout().lock();
    if events.is_empty() {
        writeln!(std::io::stderr(), "no webhook events")?;
    }
    for e in events {
        let problem = match (&e.last_error, &e.note) {
            (Some(error), _) => format!("  last error: {}", one_line(error)),
            (None, Some(note)) => format!("  note: {}", one_line(note)),
            (None, None) => String::new(),
        };
        writeln!(
            out,
            "{}  {}  {}  attempts={}  received {}{problem}",
            e.id, e.event_type, e.status, e.attempts, e.received_at
        )?;
    }
    Ok(())
}

fn replay(cli: &Cli, event_id: Option<&str>, failed: bool) -> anyhow::Result<()> {
    let db = cli.db()?;
    let (now, actor) = (SystemClock.now_ms(), Actor::cli());
    let requeued = runtime()?.block_on(async {
        match (event_id, failed) {
            (Some(id), false) => Ok(ops::replay(&db, id, &actor, now).await),
            (None, true) => Ok(ops::replay_failed(&db, &actor, now).await),
            _ => Err(anyhow::anyhow!("give either an event id or --failed")),
        }
    })?;
    let requeued = match requeued {
        Ok(n) => n,
        Err(RequeueError::Sqlite(e)) => return Err(e.into()),
        Err(RequeueError::Db(e)) => return Err(e.into()),
        Err(e) => {
            anyhow::bail!("{e}\nfix: `audiostudio webhooks list` shows each event's status")
        }
    };
    writeln!(
        std::io::stdout(),
        "requeued {requeued} event(s); the running server's worker processes them within a few seconds"
    )?;
    Ok(())
}

/// Keeps one event on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
