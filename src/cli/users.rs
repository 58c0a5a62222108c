//! `audiostudio users`: create accounts (admins included), list them, reset an account's
//! two-factor sign-in.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use super::Cli;
use crate::accounts::mfa::ops as mfa_ops;
use crate::accounts::ops::admin;
use crate::accounts::{ops, store, validate};
use crate::auth::roles::Role;
use crate::http::error::ApiResult;
use crate::platform::audit::Actor;
use crate::platform::clock::Millis;
use crate::platform::clock::{Clock, SystemClock};
use crate::platform::db::DbError;
use crate::platform::ids::UserId;
use rusqlite::Transaction;

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
    /// Disable an account: every API and console session ends at once (never the last active admin)
    Disable {
        #[arg(long)]
        email: String,
        /// Why (kept in the audit log)
        #[arg(long)]
        reason: String,
    },
    /// Enable a disabled account
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Make an account a `user` or an `admin` (never the last active admin's)
    Role {
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
    },
    /// Clear an account's failed-login lockout
    Unlock {
        #[arg(long)]
        email: String,
    },
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
        Command::Disable { .. }
        | Command::Enable { .. }
        | Command::Role { .. }
        | Command::Unlock { .. } => {
            let done = admin_action(&db, command)?;
            writeln!(std::io::stdout(), "{done}")?;
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

/// An account action of the admin API, as the CLI runs it.
type Action = Box<dyn FnOnce(&Transaction<'_>, &UserId, &Actor, Millis) -> ApiResult<()> + Send>;

/// The account a command acts on, what it does (for the printed line) and the operation.
fn action(command: &Command) -> anyhow::Result<(&str, &'static str, Action)> {
    // The CLI is nobody's account: only the last-admin rule applies to it.
    let nobody = UserId::from("");
    Ok(match command {
        Command::Disable { email, reason } => {
            let reason = reason.clone();
            let op: Action = Box::new(move |tx, id, actor, now| {
                admin::disable(tx, id, &reason, &nobody, actor, now)
            });
            (email, "disabled", op)
        }
        Command::Enable { email } => {
            let op: Action = Box::new(|tx, id, actor, now| admin::enable(tx, id, None, actor, now));
            (email, "enabled", op)
        }
        Command::Role { email, role } => {
            let role: Role = role
                .parse()
                .map_err(|_| anyhow::anyhow!("--role must be user or admin"))?;
            let op: Action = Box::new(move |tx, id, actor, now| {
                admin::set_role(tx, id, role, &nobody, actor, now)
            });
            (email, "given its role", op)
        }
        Command::Unlock { email } => {
            let op: Action = Box::new(admin::unlock);
            (email, "unlocked", op)
        }
        _ => anyhow::bail!("not an account action"),
    })
}

/// Runs an account action through the same operation as the admin API (audited as the
/// CLI); what was done, as a line to print.
fn admin_action(db: &crate::platform::db::Db, command: &Command) -> anyhow::Result<String> {
    let (email, done, op) = action(command)?;
    let lookup = email.to_owned();
    let id = db
        .read_blocking(move |c| Ok::<_, DbError>(admin::id_by_email(c, &lookup)?))?
        .ok_or_else(|| anyhow::anyhow!("no account with email {email}"))?;
    let (target, now) = (id.clone(), SystemClock.now_ms());
    db.write_blocking(move |tx| op(tx, &target, &Actor::cli(), now))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(format!("{email} ({id}) {done}"))
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
