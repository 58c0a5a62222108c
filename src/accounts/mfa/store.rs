//! The SQL of two-factor sign-in: enrolments, recovery codes, sign-in challenges.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::platform::clock::Millis;
use crate::platform::ids::UserId;

/// An account's enrolment as stored.
pub struct Enrolment {
    pub secret_sealed: Vec<u8>,
    pub confirmed: bool,
    pub last_used_step: Option<i64>,
}

pub fn enrolment(conn: &Connection, user_id: &UserId) -> rusqlite::Result<Option<Enrolment>> {
    conn.query_row(
        "SELECT secret_sealed, confirmed_at IS NOT NULL, last_used_step FROM user_mfa WHERE user_id = ?1",
        [user_id],
        |r| {
            Ok(Enrolment {
                secret_sealed: r.get(0)?,
                confirmed: r.get(1)?,
                last_used_step: r.get(2)?,
            })
        },
    )
    .optional()
}

/// Starts (or restarts) an enrolment; an account whose enrolment is confirmed keeps it
/// (returns false).
pub fn begin(
    tx: &Transaction<'_>,
    user_id: &UserId,
    sealed: &[u8],
    now: Millis,
) -> rusqlite::Result<bool> {
    let changed = tx.execute(
        "INSERT INTO user_mfa (user_id, secret_sealed, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed,
             created_at = excluded.created_at, last_used_step = NULL
         WHERE user_mfa.confirmed_at IS NULL",
        params![user_id, sealed, now],
    )?;
    Ok(changed == 1)
}

/// Confirms a pending enrolment with its first code's step and stores the digests of
/// its recovery codes (replacing any older ones).
pub fn confirm(
    tx: &Transaction<'_>,
    user_id: &UserId,
    step: i64,
    recovery_digests: &[String],
    now: Millis,
) -> rusqlite::Result<bool> {
    let changed = tx.execute(
        "UPDATE user_mfa SET confirmed_at = ?2, last_used_step = ?3
         WHERE user_id = ?1 AND confirmed_at IS NULL",
        params![user_id, now, step],
    )?;
    if changed != 1 {
        return Ok(false);
    }
    tx.execute(
        "DELETE FROM mfa_recovery_codes WHERE user_id = ?1",
        [user_id],
    )?;
    for digest in recovery_digests {
        tx.execute(
            "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) VALUES (?1, ?2, ?3)",
            params![user_id, digest, now],
        )?;
    }
    Ok(true)
}

/// Records `step` as used, unless it (or a later one) already was: false on a replay.
pub fn use_step(tx: &Transaction<'_>, user_id: &UserId, step: i64) -> rusqlite::Result<bool> {
    let changed = tx.execute(
        "UPDATE user_mfa SET last_used_step = ?2
         WHERE user_id = ?1 AND confirmed_at IS NOT NULL
           AND (last_used_step IS NULL OR last_used_step < ?2)",
        params![user_id, step],
    )?;
    Ok(changed == 1)
}

/// Spends a recovery code: false when it is not one of the account's unused codes.
pub fn use_recovery_code(
    tx: &Transaction<'_>,
    user_id: &UserId,
    digest: &str,
    now: Millis,
) -> rusqlite::Result<bool> {
    let changed = tx.execute(
        "UPDATE mfa_recovery_codes SET used_at = ?3
         WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
        params![user_id, digest, now],
    )?;
    Ok(changed == 1)
}

pub fn unused_recovery_codes(conn: &Connection, user_id: &UserId) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        [user_id],
        |r| r.get(0),
    )
}

/// Removes the account's enrolment, recovery codes and pending challenges; returns
/// whether there was an enrolment (confirmed or not).
pub fn remove(tx: &Transaction<'_>, user_id: &UserId) -> rusqlite::Result<bool> {
    let removed = tx.execute("DELETE FROM user_mfa WHERE user_id = ?1", [user_id])?;
    tx.execute(
        "DELETE FROM mfa_recovery_codes WHERE user_id = ?1",
        [user_id],
    )?;
    tx.execute("DELETE FROM mfa_challenges WHERE user_id = ?1", [user_id])?;
    Ok(removed == 1)
}

/// A pending sign-in challenge.
pub struct Challenge<'a> {
    pub token_hash: &'a str,
    pub user_id: &'a UserId,
    /// The digest of the password hash the password was checked against.
    pub password_digest: &'a str,
    pub expires_at: Millis,
}

/// Stores a sign-in challenge (and forgets expired ones).
pub fn insert_challenge(
    tx: &Transaction<'_>,
    challenge: &Challenge<'_>,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM mfa_challenges WHERE expires_at <= ?1", [now])?;
    tx.execute(
        "INSERT INTO mfa_challenges (token_hash, user_id, password_digest, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            challenge.token_hash,
            challenge.user_id,
            challenge.password_digest,
            now,
            challenge.expires_at
        ],
    )?;
    Ok(())
}

/// The account an unexpired challenge belongs to, and its password digest.
pub fn challenge_user(
    conn: &Connection,
    token_hash: &str,
    now: Millis,
) -> rusqlite::Result<Option<(UserId, String)>> {
    conn.query_row(
        "SELECT user_id, password_digest FROM mfa_challenges WHERE token_hash = ?1 AND expires_at > ?2",
        params![token_hash, now],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

pub fn delete_challenge(tx: &Transaction<'_>, token_hash: &str) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM mfa_challenges WHERE token_hash = ?1",
        [token_hash],
    )?;
    Ok(())
}
