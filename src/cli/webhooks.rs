//! `audiostudio webhooks`: list stored Stripe events and requeue failed ones for the running server's worker.

use std::io::Write;
use std::process::ExitCode;

use super::Cli;
use crate::platform::audit::Actor;
use crate::platform::clock::{Clock, SystemClock};
use crate::platform::db::DbError;
use crate::webhooks::store::{self, Requeue, RequeueError};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List stored events, newest first: Stripe event id, type, status, attempts, last error
    List {
        /// Only events with this status
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(store::STATUSES))]
        status: Option<String>,
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
    let db = cli.db()?;
    match command {
        Command::List { status, limit } => {
            let events =
                db.read_blocking(|c| Ok::<_, DbError>(store::list(c, status.as_deref(), *limit)?))?;
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
        }
        Command::Replay { event_id, failed } => {
            let event_id = match (event_id, failed) {
                (Some(id), false) => Some(id.clone()),
                (None, true) => None,
                _ => anyhow::bail!("give either an event id or --failed"),
            };
            let now = SystemClock.now_ms();
            let requeued = match db.write_blocking(move |tx| {
                let target = event_id.as_deref().map_or(Requeue::AllFailed, Requeue::One);
                store::requeue(tx, target, &Actor::cli(), now)
            }) {
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
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Keeps one event on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
