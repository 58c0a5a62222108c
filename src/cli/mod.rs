//! The command line: one subcommand per file, each with its arguments and a `run`.

mod audit;
mod backup;
mod check;
mod config;
mod migrate;
mod restore;
mod seed;
mod serve;
mod stripe;
mod tokens;
mod users;
mod webhooks;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use rocket::figment::Figment;
use rocket::figment::providers::Serialized;

use crate::platform::config::Settings;
use crate::platform::db::Db;

/// audiostudio: accounts, tokens and billing for an AI audio studio, in one binary.
///
/// Without a subcommand it serves the API (like `audiostudio serve`). Settings come from
/// Rocket.toml, ROCKET_* environment variables and the secrets JWT_SECRET,
/// STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET and SMTP_URL; none are required.
#[derive(Debug, Parser)]
#[command(name = "audiostudio", version, propagate_version = true)]
pub struct Cli {
    /// Directory holding the database and generated secrets [default: ./data]
    #[arg(long, global = true, value_name = "DIR", env = "AUDIOSTUDIO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Configuration file to read instead of ./Rocket.toml (or $ROCKET_CONFIG)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default)
    Serve(serve::Args),
    /// Apply pending database migrations and list the applied versions
    Migrate,
    /// Manage user accounts
    #[command(subcommand)]
    Users(users::Command),
    /// Inspect the audit log
    #[command(subcommand)]
    Audit(audit::Command),
    /// Grant tokens and read balances
    #[command(subcommand)]
    Tokens(tokens::Command),
    /// Verify the money invariants for every user; exits non-zero on any mismatch
    Check,
    /// Add the catalogue (plans, token packs, social tasks), and demo users with --demo
    Seed(seed::Args),
    /// Inspect and replay stored Stripe webhook events
    #[command(subcommand)]
    Webhooks(webhooks::Command),
    /// Talk to Stripe: sync the catalogue, reconcile subscriptions
    #[command(subcommand)]
    Stripe(stripe::Command),
    /// Copy the live database (online, verified); --verify checks any file, --list lists
    Backup(backup::Args),
    /// Replace the database with a verified backup; refuses while a server runs
    Restore(restore::Args),
    /// Print the effective settings, secrets masked
    Config,
    /// Print a shell completion script
    Completions {
        /// The shell to generate completions for
        shell: clap_complete::Shell,
    },
}

impl Cli {
    /// The figment every command reads its settings from, with `--data-dir` on top.
    pub fn figment(&self) -> Figment {
        let figment = crate::platform::config::figment(self.config.as_deref());
        match &self.data_dir {
            Some(dir) => figment.merge(Serialized::global("data_dir", dir)),
            None => figment,
        }
    }

    pub fn settings(&self) -> anyhow::Result<Settings> {
        Settings::from_figment(&self.figment())
    }

    /// The database of the configured data dir (created and migrated when needed): the
    /// one way commands reach it, through the same writer as the server.
    pub fn db(&self) -> anyhow::Result<Db> {
        Db::open(&self.settings()?)
    }
}

/// Parses the command line, runs the command and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve(_)));
    // Held until the command returns: dropping it flushes the log lines still queued.
    let _log_flush = init_logging(serving);
    let result = match &cli.command {
        None => serve::run(&cli, &serve::Args::default()),
        Some(Command::Serve(args)) => serve::run(&cli, args),
        Some(Command::Migrate) => migrate::run(&cli),
        Some(Command::Users(command)) => users::run(&cli, command),
        Some(Command::Audit(command)) => audit::run(&cli, command),
        Some(Command::Tokens(command)) => tokens::run(&cli, command),
        Some(Command::Check) => check::run(&cli),
        Some(Command::Seed(args)) => seed::run(&cli, args),
        Some(Command::Webhooks(command)) => webhooks::run(&cli, command),
        Some(Command::Stripe(command)) => stripe::run(&cli, command),
        Some(Command::Backup(args)) => backup::run(&cli, args),
        Some(Command::Restore(args)) => restore::run(&cli, args),
        Some(Command::Config) => config::run(&cli),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "audiostudio",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Logs go to stderr: JSON lines in release builds (or with AUDIOSTUDIO_LOG_FORMAT=json),
/// readable text otherwise; RUST_LOG filters them. Rocket's own per-request lines ("No
/// matching routes", "Responding with ... catcher") are off by default: the request log
/// line already says each request's status, and a scanner would double the log.
///
/// The server hands lines to a writer thread (never dropping one: a full queue waits), so
/// a request does not wait for the write to stderr; the returned guard flushes the queue.
fn init_logging(serving: bool) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let default = if serving {
        "info,rocket::launch::_=warn,rocket::server=warn,rocket::server::_=off,refinery_core=warn"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = match std::env::var("AUDIOSTUDIO_LOG_FORMAT") {
        Ok(format) => format.eq_ignore_ascii_case("json"),
        Err(_) => !cfg!(debug_assertions),
    };
    let (writer, guard) = if serving {
        // 8,192 lines absorb a burst (the default 128,000 would hold 4 MiB for good).
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(8192)
            .lossy(false)
            // Buffered: the writer thread writes what a burst queued in a few large
            // writes instead of one per line, and flushes whenever its queue is empty.
            .finish(std::io::BufWriter::new(std::io::stderr()));
        (BoxMakeWriter::new(writer), Some(guard))
    } else {
        (BoxMakeWriter::new(std::io::stderr), None)
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
