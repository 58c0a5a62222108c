//! Single-use email tokens (verification, password reset): random, stored as SHA-256, short-lived.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::platform::clock::Millis;
use crate::platform::ids::UserId;
use crate::platform::secret_token::{new_opaque_token, token_hash};

crate::stored_enum! {
    /// What a token proves (`one_time_tokens.purpose`).
    pub enum Purpose {
        VerifyEmail,
        ResetPassword,
    }
}

/// Issues a token; the plain value goes only into the email.
pub fn issue(
    tx: &Transaction<'_>,
    user_id: &UserId,
    purpose: Purpose,
    now: Millis,
    ttl_ms: Millis,
) -> rusqlite::Result<String> {
    let (token, hash) = new_opaque_token();
    tx.execute(
        "INSERT INTO one_time_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![hash, user_id, purpose, now, now.saturating_add(ttl_ms)],
    )?;
    Ok(token)
}

/// Uses a token up; returns its user when it was valid, unused and unexpired.
pub fn consume(
    tx: &Transaction<'_>,
    token: &str,
    purpose: Purpose,
    now: Millis,
) -> rusqlite::Result<Option<UserId>> {
    tx.query_row(
        "UPDATE one_time_tokens SET used_at = ?3
         WHERE token_hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3
         RETURNING user_id",
        params![token_hash(token), purpose, now],
        |r| r.get(0),
    )
    .optional()
}

/// The user a token would be accepted for now, without using it up.
pub fn usable_by(
    conn: &Connection,
    token: &str,
    purpose: Purpose,
    now: Millis,
) -> rusqlite::Result<Option<UserId>> {
    conn.query_row(
        "SELECT user_id FROM one_time_tokens
         WHERE token_hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3",
        params![token_hash(token), purpose, now],
        |r| r.get(0),
    )
    .optional()
}

/// Makes every outstanding token of that purpose unusable (e.g. after a reset).
pub fn expire_all(
    tx: &Transaction<'_>,
    user_id: &UserId,
    purpose: Purpose,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE one_time_tokens SET used_at = ?3 WHERE user_id = ?1 AND purpose = ?2 AND used_at IS NULL",
        params![user_id, purpose, now],
    )?;
    Ok(())
}

/// When the last token of that purpose was issued, for throttling resends.
pub fn last_issued(
    conn: &Connection,
    user_id: &UserId,
    purpose: Purpose,
) -> rusqlite::Result<Option<Millis>> {
    conn.query_row(
        "SELECT MAX(created_at) FROM one_time_tokens WHERE user_id = ?1 AND purpose = ?2",
        params![user_id, purpose],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_are_stored_as_the_schema_spells_them() {
        let conn = Connection::open_in_memory().unwrap();
        let text: String = conn
            .query_row("SELECT ?1", [Purpose::ResetPassword], |r| r.get(0))
            .unwrap();
        assert_eq!(text, "reset_password");
        let back: Purpose = conn
            .query_row("SELECT 'verify_email'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(back, Purpose::VerifyEmail);
    }
}
