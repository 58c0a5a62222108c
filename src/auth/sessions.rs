//! Sessions and their rotating refresh tokens, stored only as SHA-256 hashes.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use utoipa::ToSchema;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::derived::DerivedKey;
use super::mfa::Factor;
use super::roles::{Role, UserStatus};
use crate::platform::client::ClientInfo;
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::{SessionId, UserId};
use crate::platform::secret_token::{new_opaque_token, token_hash};

crate::stored_enum! {
    /// Why a session ended (`sessions.revoked_reason`).
    pub enum RevokeReason {
        Logout,
        LogoutAll,
        RevokedByUser,
        PasswordChanged,
        PasswordReset,
        RefreshTokenReuse,
        RevokedByAdmin,
        AccountDisabled,
    }
}

pub struct NewSession {
    pub session_id: SessionId,
    pub refresh_token: String,
}

/// How long a session lasts: at most `absolute_ms` after it opened, and at most `idle_ms`
/// after its last use (a refresh). `sessions.expires_at` holds the sooner of the two.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub absolute_ms: Millis,
    pub idle_ms: Millis,
}

impl Lifetime {
    fn expiry(&self, created_at: Millis, now: Millis) -> Millis {
        created_at
            .saturating_add(self.absolute_ms)
            .min(now.saturating_add(self.idle_ms))
    }
}

/// A session opened with the password alone.
pub fn create(
    tx: &Transaction<'_>,
    user_id: &UserId,
    now: Millis,
    lifetime: Lifetime,
    client: &ClientInfo,
) -> rusqlite::Result<NewSession> {
    create_with_factor(tx, user_id, now, lifetime, client, Factor::Password)
}

/// A session opened with `factor` (recorded in `sessions.factor`).
pub fn create_with_factor(
    tx: &Transaction<'_>,
    user_id: &UserId,
    now: Millis,
    lifetime: Lifetime,
    client: &ClientInfo,
    factor: Factor,
) -> rusqlite::Result<NewSession> {
    let session_id = SessionId::from(uuid::Uuid::now_v7().to_string());
    tx.execute(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent, factor)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7)",
        params![
            session_id,
            user_id,
            now,
            lifetime.expiry(now, now),
            client.ip.map(|ip| ip.to_string()),
            client.user_agent,
            factor
        ],
    )?;
    let (refresh_token, hash) = new_opaque_token();
    insert_refresh_token(tx, &hash, &session_id, now)?;
    Ok(NewSession {
        session_id,
        refresh_token,
    })
}

fn insert_refresh_token(
    tx: &Transaction<'_>,
    hash: &str,
    session_id: &SessionId,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES (?1, ?2, ?3)",
        params![hash, session_id, now],
    )?;
    Ok(())
}

/// The refresh token that replaces `token`: derived, not random, so a second exchange
/// inside the grace window gets the same one again and nothing but its hash is stored.
fn successor_of(key: &DerivedKey, token: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.mac("refresh-token successor", token.as_bytes()))
}

pub enum Refresh {
    Rotated {
        session_id: SessionId,
        user_id: UserId,
        refresh_token: String,
    },
    /// A token rotated away long ago came back: the whole session was revoked.
    Reused {
        session_id: SessionId,
        user_id: UserId,
    },
    Invalid,
}

/// What a presented refresh token belongs to.
struct Presented {
    session_id: SessionId,
    user_id: UserId,
    rotated_at: Option<Millis>,
    created_at: Millis,
    /// Whether the session is unrevoked and unexpired and its user active.
    live: bool,
}

fn presented(
    tx: &Transaction<'_>,
    token: &str,
    now: Millis,
) -> rusqlite::Result<Option<Presented>> {
    tx.query_row(
        "SELECT rt.session_id, rt.rotated_at, s.user_id, s.revoked_at, s.expires_at, u.status,
                s.created_at
         FROM refresh_tokens rt
         JOIN sessions s ON s.id = rt.session_id
         JOIN users u ON u.id = s.user_id
         WHERE rt.token_hash = ?1",
        [token_hash(token)],
        |r| {
            let revoked_at: Option<Millis> = r.get(3)?;
            let expires_at: Millis = r.get(4)?;
            let status: UserStatus = r.get(5)?;
            Ok(Presented {
                session_id: r.get(0)?,
                rotated_at: r.get(1)?,
                user_id: r.get(2)?,
                created_at: r.get(6)?,
                live: revoked_at.is_none() && expires_at > now && status == UserStatus::Active,
            })
        },
    )
    .optional()
}

/// How refresh tokens are exchanged: reuse grace, session lifetime, successor key.
pub struct Rotation<'a> {
    pub grace_ms: Millis,
    pub lifetime: Lifetime,
    pub key: &'a DerivedKey,
}

/// Exchanges a refresh token for its successor. Within `grace_ms` of the first exchange
/// the exchange is idempotent: the same successor again (two tabs, or a thief racing the
/// client, share one branch). A rotated token presented later revokes the session.
pub fn rotate(
    tx: &Transaction<'_>,
    presented_token: &str,
    now: Millis,
    rotation: &Rotation<'_>,
) -> rusqlite::Result<Refresh> {
    let Some(Presented {
        session_id,
        user_id,
        rotated_at,
        created_at,
        live: true,
    }) = presented(tx, presented_token, now)?
    else {
        return Ok(Refresh::Invalid);
    };
    let successor = successor_of(rotation.key, presented_token);
    match rotated_at {
        Some(at) if now.saturating_sub(at) > rotation.grace_ms => {
            let reason = RevokeReason::RefreshTokenReuse;
            revoke(tx, &user_id, &session_id, reason, now)?;
            return Ok(Refresh::Reused {
                session_id,
                user_id,
            });
        }
        // Within the grace window: the successor already issued (unless the signing
        // secret changed since, which leaves nothing to hand out again).
        Some(_) if !refresh_token_exists(tx, &token_hash(&successor), &session_id)? => {
            return Ok(Refresh::Invalid);
        }
        Some(_) => {}
        None => {
            tx.execute(
                "UPDATE refresh_tokens SET rotated_at = ?2 WHERE token_hash = ?1",
                params![token_hash(presented_token), now],
            )?;
            insert_refresh_token(tx, &token_hash(&successor), &session_id, now)?;
        }
    }
    tx.execute(
        "UPDATE sessions SET last_used_at = ?2, expires_at = ?3 WHERE id = ?1",
        params![session_id, now, rotation.lifetime.expiry(created_at, now)],
    )?;
    Ok(Refresh::Rotated {
        session_id,
        user_id,
        refresh_token: successor,
    })
}

fn refresh_token_exists(
    tx: &Transaction<'_>,
    hash: &str,
    session_id: &SessionId,
) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = ?1 AND session_id = ?2)",
        params![hash, session_id],
        |r| r.get(0),
    )
}

/// Revokes one session of `user_id`; returns whether it was theirs and not yet revoked.
pub fn revoke(
    tx: &Transaction<'_>,
    user_id: &UserId,
    session_id: &SessionId,
    reason: RevokeReason,
    now: Millis,
) -> rusqlite::Result<bool> {
    let changed = tx.execute(
        "UPDATE sessions SET revoked_at = ?3, revoked_reason = ?4
         WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![session_id, user_id, now, reason],
    )?;
    Ok(changed == 1)
}

/// Revokes every active session of a user but `keep`; returns how many.
pub fn revoke_all(
    tx: &Transaction<'_>,
    user_id: &UserId,
    keep: Option<&SessionId>,
    reason: RevokeReason,
    now: Millis,
) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE sessions SET revoked_at = ?3, revoked_reason = ?4
         WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?2",
        params![user_id, keep, now, reason],
    )
}

/// The role of the user behind an active session, if it is one (ids as text: the guards
/// in `auth` pass the token's claims).
pub fn active_session_user(
    conn: &Connection,
    session_id: &str,
    user_id: &str,
    now: Millis,
) -> rusqlite::Result<Option<Role>> {
    // Every authenticated request runs this: the statement stays prepared per connection.
    conn.prepare_cached(
        "SELECT u.role FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND s.expires_at > ?3
           AND u.status = ?4",
    )?
    .query_row(params![session_id, user_id, now, UserStatus::Active], |r| {
        r.get(0)
    })
    .optional()
}

/// One active session, as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    #[schema(value_type = String)]
    pub id: SessionId,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// How its owner signed in: `password`, `totp` or `recovery_code`.
    pub factor: Factor,
    /// Whether this is the session making the request.
    pub current: bool,
}

pub fn list_active(
    conn: &Connection,
    user_id: &UserId,
    current: &SessionId,
    now: Millis,
) -> rusqlite::Result<Vec<SessionView>> {
    let mut stmt = conn.prepare(
        "SELECT id, created_at, last_used_at, expires_at, ip, user_agent, factor FROM sessions
         WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
         ORDER BY created_at DESC, id DESC LIMIT 200",
    )?;
    stmt.query_map(params![user_id, now], |r| {
        let id: SessionId = r.get(0)?;
        Ok(SessionView {
            current: id == *current,
            id,
            created_at: rfc3339(r.get(1)?),
            last_used_at: rfc3339(r.get(2)?),
            expires_at: rfc3339(r.get(3)?),
            ip: r.get(4)?,
            user_agent: r.get(5)?,
            factor: r.get(6)?,
        })
    })?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_reasons_are_stored_as_before() {
        let text: &'static str = RevokeReason::RefreshTokenReuse.into();
        assert_eq!(text, "refresh_token_reuse");
        let text: &'static str = RevokeReason::LogoutAll.into();
        assert_eq!(text, "logout_all");
    }
}
