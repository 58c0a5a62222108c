//! `audiostudio users`: create accounts (admins included) and list them.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use serde_json::json;

use super::Cli;
use crate::accounts::{users, validate};
use crate::auth::roles::Role;
use crate::platform::audit::{self, Actor, Event};
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
}

pub fn run(cli: &Cli, command: &Command) -> anyhow::Result<ExitCode> {
    let settings = cli.settings()?;
    let db = cli.db()?;
    match command {
        Command::Create { email, admin } => {
            validate::email(email).map_err(|m| anyhow::anyhow!("email {m}"))?;
            let password = read_password()?;
            validate::new_password(&password).map_err(|m| anyhow::anyhow!("password {m}"))?;
            let params = settings.argon2_params()?;
            let hash = crate::auth::password::hash_blocking(&params, &password)?;
            let email = validate::normalize_email(email);
            let role = if *admin { Role::Admin } else { Role::User };
            let now = SystemClock.now_ms();
            let address = email.clone();
            let id = db.write_blocking(move |tx| {
                let new = users::NewUser {
                    email: &address,
                    password_hash: &hash,
                    role,
                    display_name: None,
                    email_verified: true,
                };
                let Some(id) = users::insert(tx, &new, now)? else {
                    anyhow::bail!("a user with email {address} already exists");
                };
                let event = Event::new("admin.user_created")
                    .target("user", &id)
                    .details(json!({ "role": role, "via": "cli" }));
                audit::record(tx, now, &Actor::cli(), event)?;
                Ok(id)
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
            for u in db.read_blocking(|c| Ok::<_, DbError>(users::all(c)?))? {
                writeln!(
                    out,
                    "{:<36}  {:<32}  {:<5}  {:<8}  {:<8}  {}",
                    u.id,
                    u.email,
                    u.role,
                    u.status,
                    if u.email_verified { "yes" } else { "no" },
                    u.created_at
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
