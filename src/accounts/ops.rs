//! Account operations for the CLI and the admin API: plain functions, no clap, no Rocket.

pub mod admin;

use rusqlite::{Connection, Transaction};
use serde_json::json;

use super::store::{self, NewUser, UserView};
use super::validate;
use crate::auth::roles::Role;
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::config::Settings;
use crate::platform::ids::UserId;

/// A checked account, its password hashed, ready for [`create_user`].
pub struct NewAccount {
    email: String,
    password_hash: String,
    role: Role,
}

/// Checks `password` against the policy (and that it is not the email) and hashes it with the configured argon2
/// parameters, on this thread (it takes a moment). `email` is already valid, as
/// [`validate::email`] returns it.
pub fn new_account(
    settings: &Settings,
    email: &str,
    password: &str,
    role: Role,
) -> anyhow::Result<NewAccount> {
    validate::account_password(password, email).map_err(|m| anyhow::anyhow!("password {m}"))?;
    let params = settings.argon2_params()?;
    Ok(NewAccount {
        email: validate::normalize_email(email),
        password_hash: crate::auth::password::hash_blocking(&params, password)?,
        role,
    })
}

/// Stores the account (its email counts as verified) and audits who created it and
/// through what (`via`, e.g. `cli`).
pub fn create_user(
    tx: &Transaction<'_>,
    account: &NewAccount,
    actor: &Actor,
    via: &str,
    now: Millis,
) -> anyhow::Result<UserId> {
    let new = NewUser {
        email: &account.email,
        password_hash: &account.password_hash,
        role: account.role,
        display_name: None,
        email_verified: true,
    };
    let Some(id) = store::insert(tx, &new, now)? else {
        anyhow::bail!("a user with email {} already exists", account.email);
    };
    let event = Event::new("admin.user_created")
        .target("user", &id)
        .details(json!({ "role": account.role, "via": via }));
    audit::record(tx, now, actor, event)?;
    Ok(id)
}

/// A user by id.
pub fn find_user(conn: &Connection, id: &UserId) -> rusqlite::Result<Option<UserView>> {
    store::find_user(conn, id)
}

/// The id of the active account with this address (in any case or spacing).
pub fn find_active_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<UserId>> {
    store::find_id_by_email(conn, &validate::normalize_email(email))
}

/// Stores a demo account (verified, role user) with an already hashed password; `None`
/// when the address is taken.
pub fn insert_demo_user(
    tx: &Transaction<'_>,
    email: &str,
    display_name: &str,
    password_hash: &str,
    now: Millis,
) -> rusqlite::Result<Option<UserId>> {
    let new = NewUser {
        email,
        password_hash,
        role: Role::User,
        display_name: Some(display_name),
        email_verified: true,
    };
    store::insert(tx, &new, now)
}

/// Every user, oldest first.
pub fn list_users(conn: &Connection) -> rusqlite::Result<Vec<UserView>> {
    store::all(conn)
}
