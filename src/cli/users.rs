//! `audiostudio users`: create accounts (admins included), list them, reset an account's
//! two-factor sign-in.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use super::Cli;
use crate::accounts::mfa::ops as mfa_ops;
use crate::accounts::{ops, store, validate};
use crate::auth::roles::Role;
use crate::platform::audit::Actor;
use crate::platform::clock::{Clock, SystemClock};
use crate::platform::db::DbError;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a user; the password is read from stdin (one line) or prompted for, never from argv
    Create {
        /// The account's email address
        #[arg(long)]
        email: String,
        /// Give the account the admin role
        #[arg(long)]
        admin: bool,
    },
    /// List every user, oldest first
    List,
    /// Turn off an account's two-factor sign-in (lost authenticator and recovery codes);
    /// audited, and the owner is told by email
    MfaReset {
        /// The account's email address
        email: String,
    },
}

pub fn run(cli: &Cli, command: &Command) -> anyhow::Result<ExitCode> {
    let settings = cli.settings()?;
    let db = cli.db()?;
    match command {
        Command::Create { email, admin } => {
            let email = validate::email(email).map_err(|m| anyhow::anyhow!("email {m}"))?;
            let password = read_password()?;
            let role = if *admin { Role::Admin } else { Role::User };
            let account = ops::new_account(&settings, &email, &password, role)?;
            let now = SystemClock.now_ms();
            let id = db.write_blocking(move |tx| {
                ops::create_user(tx, &account, &Actor::cli(), "cli", now)
            })?;
            writeln!(std::io::stdout(), "created {role} {email} ({id})")?;
        }
        Command::List => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<36}  {:<32}  {:<5}  {:<8}  {:<8}  created",
                "id", "email", "role", "status", "verified"
            )?;
            for u in db.read_blocking(|c| Ok::<_, DbError>(ops::list_users(c)?))? {
                writeln!(
                    out,
                    "{:<36}  {:<32}  {:<5}  {:<8}  {:<8}  {}",
                    u.id.as_str(),
                    u.email,
                    u.role,
                    u.status,
                    if u.email_verified { "yes" } else { "no" },
                    u.created_at
                )?;
            }
        }
        Command::MfaReset { email } => return mfa_reset(&settings, &db, email),
    }
    Ok(ExitCode::SUCCESS)
}

/// `users mfa-reset <email>`: exit 1 when there is no such account or nothing to reset.
fn mfa_reset(
    settings: &crate::platform::config::Settings,
    db: &crate::platform::db::Db,
    email: &str,
) -> anyhow::Result<ExitCode> {
    let email = validate::normalize_email(email);
    let (now, base_url) = (
        SystemClock.now_ms(),
        settings.server.public_base_url.clone(),
    );
    let lookup = email.clone();
    let reset = db.write_blocking(move |tx| {
        let Some(account) = store::find_credentials(tx, &lookup)? else {
            return Ok::<_, anyhow::Error>(None);
        };
        Ok(Some(mfa_ops::reset(
            tx,
            &base_url,
            &account,
            &Actor::cli(),
            now,
        )?))
    })?;
    let (line, code) = match reset {
        None => (format!("no account with email {email}"), ExitCode::FAILURE),
        Some(false) => (
            format!("{email} has no two-factor authentication; nothing changed"),
            ExitCode::FAILURE,
        ),
        Some(true) => (
            format!(
                "two-factor authentication of {email} was reset; they log in with the password alone until they enrol again"
            ),
            ExitCode::SUCCESS,
        ),
    };
    if code == ExitCode::SUCCESS {
        writeln!(std::io::stdout(), "{line}")?;
    } else {
        writeln!(std::io::stderr(), "{line}")?;
    }
    Ok(code)
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        anyhow::ensure!(first == second, "the passwords do not match");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}
