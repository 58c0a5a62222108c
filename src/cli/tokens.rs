//! `audiostudio tokens`: grant tokens to a user and read a balance.

use std::io::Write;
use std::process::ExitCode;

use super::Cli;
use crate::accounts::validate;
use crate::platform::audit::Actor;
use crate::platform::clock::{Clock, Millis, SystemClock};
use crate::platform::db::Db;
use crate::tokens::{self, ops, ops::Recipient};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Grant tokens to a user as a new lot (audited)
    Grant {
        /// The user's email address
        email: String,
        /// How many tokens
        amount: i64,
        /// Why, for the ledger and the audit log
        #[arg(long)]
        reason: String,
        /// Expire the tokens after this long: e.g. 30d, 12h, 90m
        #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
        expires_in: Option<i64>,
    },
    /// Print a user's balance, reserved and expiring tokens
    Balance {
        /// The user's email address
        email: String,
    },
}

/// `30d`, `12h`, `90m` or `45s` in milliseconds.
fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let split = text.char_indices().next_back().map_or(0, |(i, _)| i);
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a duration like 30d, 12h, 90m or 45s"))?;
    let unit_ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1000,
        _ => return Err(format!("{text:?}: the unit must be d, h, m or s")),
    };
    n.checked_mul(unit_ms)
        .filter(|ms| *ms <= 3660 * 86_400_000)
        .ok_or_else(|| format!("{text:?} is too long"))
}

pub fn run(cli: &Cli, command: &Command) -> anyhow::Result<ExitCode> {
    let db = cli.db()?;
    let now = SystemClock.now_ms();
    match command {
        Command::Grant {
            email,
            amount,
            reason,
            expires_in,
        } => grant(
            &db,
            email,
            *amount,
            reason,
            expires_in.map(|ms| now + ms),
            now,
        ),
        Command::Balance { email } => balance(&db, email, now),
    }
}

fn grant(
    db: &Db,
    email: &str,
    amount: i64,
    reason: &str,
    expires_at: Option<Millis>,
    now: Millis,
) -> anyhow::Result<ExitCode> {
    tokens::check_amount(amount).map_err(|m| anyhow::anyhow!("amount {m}"))?;
    anyhow::ensure!(!reason.trim().is_empty(), "--reason must not be empty");
    let email = validate::normalize_email(email);
    let (address, reason) = (email.clone(), reason.to_owned());
    let (lot, transaction) = db.write_blocking(move |tx| {
        let user_id = ops::find_recipient(tx, &Recipient::Email(address.clone()))?
            .ok_or_else(|| anyhow::anyhow!("no active user {address}"))?;
        ops::grant_by_admin(
            tx,
            &user_id,
            amount,
            &reason,
            expires_at,
            &Actor::cli(),
            now,
        )
        .map_err(|e| anyhow::anyhow!("grant failed: {e}"))
    })?;
    writeln!(
        std::io::stdout(),
        "granted {amount} tokens to {email} (lot {lot}); balance {}",
        transaction.balance_after
    )?;
    Ok(ExitCode::SUCCESS)
}

fn balance(db: &Db, email: &str, now: Millis) -> anyhow::Result<ExitCode> {
    let email = validate::normalize_email(email);
    let view = db.read_blocking(|c| {
        ops::balance_by_email(c, &email, now)?
            .ok_or_else(|| anyhow::anyhow!("no active user {email}"))
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{email}: balance {}, held {}", view.balance, view.held)?;
    writeln!(
        out,
        "lifetime earned {}, spent {}",
        view.lifetime_earned, view.lifetime_spent
    )?;
    for e in view.expiring {
        writeln!(out, "  {} expire at {}", e.amount, e.expires_at)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30d"), Ok(30 * 86_400_000));
        assert_eq!(parse_duration_ms("90m"), Ok(90 * 60_000));
        assert!(parse_duration_ms("0d").is_err());
        assert!(parse_duration_ms("-1d").is_err());
        assert!(parse_duration_ms("10w").is_err());
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("30д").is_err());
        assert!(parse_duration_ms("999999999999d").is_err());
    }
}
