//! `audiostudio seed`: the catalogue (plans, packs, social tasks), and demo users on request. Idempotent.

use std::io::Write;
use std::process::ExitCode;

use rusqlite::Transaction;

use super::Cli;
use crate::accounts::ops as accounts;
use crate::billing;
use crate::platform::clock::{Clock, Millis, SystemClock};
use crate::tokens;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also create demo users (demo1@example.com, ...) with balances and history
    #[arg(long)]
    pub demo: bool,
    /// How many demo users
    #[arg(long, default_value_t = 10, requires = "demo", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub demo_users: u32,
}

/// The password of every demo user.
pub const DEMO_PASSWORD: &str = "demo password 2026";

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let settings = cli.settings()?;
    let db = cli.db()?;
    let now = SystemClock.now_ms();
    let added = db.write_blocking(move |tx| seed_catalogue(tx, now))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "catalogue: {added} rows added (plans, packs, social tasks; existing rows kept)"
    )?;
    if args.demo {
        let params = settings.argon2_params()?;
        // One hash for every demo user: they share a password and the seed stays fast.
        let hash = crate::auth::password::hash_blocking(&params, DEMO_PASSWORD)?;
        let bar = indicatif::ProgressBar::new(u64::from(args.demo_users));
        bar.set_style(
            indicatif::ProgressStyle::with_template("demo users {bar:40} {pos}/{len} {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let mut created = 0;
        for i in 1..=args.demo_users {
            let hash = hash.clone();
            if db.write_blocking(move |tx| seed_demo_user(tx, i, &hash, now))? {
                created += 1;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        writeln!(
            out,
            "demo users: {created} created, {} already there (password: {DEMO_PASSWORD:?})",
            args.demo_users - created
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The plans (billing), then the token packs and social tasks (tokens).
fn seed_catalogue(tx: &Transaction<'_>, now: Millis) -> anyhow::Result<usize> {
    Ok(billing::ops::seed_plans(tx, now)? + tokens::ops::seed_catalogue(tx, now)?)
}

/// Creates demo user `i` with a grant and a few spends; false if it already exists.
fn seed_demo_user(tx: &Transaction<'_>, i: u32, hash: &str, now: Millis) -> anyhow::Result<bool> {
    let email = format!("demo{i}@example.com");
    let name = format!("Demo {i}");
    let Some(user_id) = accounts::insert_demo_user(tx, &email, &name, hash, now)? else {
        return Ok(false);
    };
    tokens::ops::seed_demo_history(tx, &user_id, i, now)?;
    Ok(true)
}
