//! `audiostudio seed`: the catalogue (plans, packs, social tasks), and demo users on request. Idempotent.
//!
//! Demo users share a published password, so `--demo` refuses a database that holds any
//! other account: demo data goes in a data directory of its own.

use std::io::Write;
use std::process::ExitCode;

use rusqlite::Transaction;

use super::Cli;
use crate::accounts::ops as accounts;
use crate::accounts::store::UserView;
use crate::auth::roles::Role;
use crate::billing;
use crate::platform::clock::{Clock, Millis, SystemClock};
use crate::platform::db::{Db, DbError};
use crate::tokens;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also create demo users (demo1@example.com, ...) with balances and history. They share
    /// a published password, so this refuses a database that has any other account: use a
    /// data directory of its own (e.g. --data-dir demo-data)
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
    if args.demo {
        refuse_real_accounts(&db)?;
    }
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

/// Fails when the database holds an account that is not a demo user: a demo user's
/// password is public, and seeding them beside real accounts opens a door in production.
fn refuse_real_accounts(db: &Db) -> anyhow::Result<()> {
    let users = db.read_blocking(|c| Ok::<_, DbError>(accounts::list_users(c)?))?;
    let real = users.iter().filter(|u| !is_demo_user(u)).count();
    if real > 0 {
        anyhow::bail!(
            "refusing to seed demo users: the database has {real} account(s) that are not demo users, and demo users share a published password\nfix: seed demo data into a data directory of its own, e.g. `audiostudio --data-dir demo-data seed --demo`"
        );
    }
    Ok(())
}

/// A user as `seed --demo` creates them: `demo<N>@example.com`, a verified email, role user.
fn is_demo_user(user: &UserView) -> bool {
    let number = user
        .email
        .strip_prefix("demo")
        .and_then(|rest| rest.strip_suffix("@example.com"));
    number.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && user.email_verified
        && user.role == Role::User
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::roles::UserStatus;

    fn account(email: &str, verified: bool, role: Role) -> UserView {
        UserView {
            id: "u".into(),
            email: email.to_owned(),
            role,
            status: UserStatus::Active,
            email_verified: verified,
            display_name: None,
            created_at: String::new(),
        }
    }

    #[test]
    fn only_seeded_demo_accounts_count_as_demo_users() {
        assert!(is_demo_user(&account(
            "demo1@example.com",
            true,
            Role::User
        )));
        assert!(is_demo_user(&account(
            "demo100000@example.com",
            true,
            Role::User
        )));
        for email in [
            "demo@example.com",
            "demox@example.com",
            "demo1@example.com.evil.org",
            "ada@example.com",
            "xdemo1@example.com",
        ] {
            assert!(!is_demo_user(&account(email, true, Role::User)), "{email}");
        }
        // Registered through the API (unverified) or made an admin: a real account.
        assert!(!is_demo_user(&account(
            "demo1@example.com",
            false,
            Role::User
        )));
        assert!(!is_demo_user(&account(
            "demo1@example.com",
            true,
            Role::Admin
        )));
    }
}
