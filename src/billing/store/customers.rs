//! The Stripe customer of each user (`users.stripe_customer_id`).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::platform::clock::Millis;
use crate::platform::ids::UserId;

/// The user's email and Stripe customer id, if the user exists.
pub fn customer_of(
    conn: &Connection,
    user_id: &UserId,
) -> rusqlite::Result<Option<(String, Option<String>)>> {
    conn.query_row(
        "SELECT email, stripe_customer_id FROM users WHERE id = ?1",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Records the user's Stripe customer unless one is recorded already; returns the one
/// that stands and whether it is the one just given.
pub fn set_customer(
    tx: &Transaction<'_>,
    user_id: &UserId,
    customer_id: &str,
    now: Millis,
) -> rusqlite::Result<(String, bool)> {
    let changed = tx.execute(
        "UPDATE users SET stripe_customer_id = ?2, updated_at = ?3 WHERE id = ?1 AND stripe_customer_id IS NULL",
        params![user_id, customer_id, now],
    )?;
    let stored: Option<String> = tx.query_row(
        "SELECT stripe_customer_id FROM users WHERE id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    Ok((
        stored.unwrap_or_else(|| customer_id.to_owned()),
        changed == 1,
    ))
}

/// The user owning a Stripe customer.
pub fn user_by_customer(conn: &Connection, customer_id: &str) -> rusqlite::Result<Option<UserId>> {
    conn.query_row(
        "SELECT id FROM users WHERE stripe_customer_id = ?1",
        [customer_id],
        |r| r.get(0),
    )
    .optional()
}

/// The user of this id, if there is one.
pub fn user_exists(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<UserId>> {
    conn.query_row("SELECT id FROM users WHERE id = ?1", [user_id], |r| {
        r.get(0)
    })
    .optional()
}

/// The user's email address.
pub fn email_of(conn: &Connection, user_id: &UserId) -> rusqlite::Result<String> {
    conn.query_row("SELECT email FROM users WHERE id = ?1", [user_id], |r| {
        r.get(0)
    })
}
