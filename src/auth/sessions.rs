//! Sessions and their rotating refresh tokens, stored only as SHA-256 hashes.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use utoipa::ToSchema;

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
    }
}

pub struct NewSession {
    pub session_id: SessionId,
    pub refresh_token: String,
}

pub fn create(
    tx: &Transaction<'_>,
    user_id: &UserId,
    now: Millis,
    ttl_ms: Millis,
    client: &ClientInfo,
) -> rusqlite::Result<NewSession> {
    let session_id = SessionId::from(uuid::Uuid::now_v7().to_string());
    tx.execute(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
        params![
            session_id,
            user_id,
            now,
            now.saturating_add(ttl_ms),
            client.ip.map(|ip| ip.to_string()),
            client.user_agent
        ],
    )?;
    let refresh_token = issue_refresh_token(tx, &session_id, now)?;
    Ok(NewSession {
        session_id,
        refresh_token,
    })
}

fn issue_refresh_token(
    tx: &Transaction<'_>,
    session_id: &SessionId,
    now: Millis,
) -> rusqlite::Result<String> {
    let (token, hash) = new_opaque_token();
    tx.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES (?1, ?2, ?3)",
        params![hash, session_id, now],
    )?;
    Ok(token)
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
    /// Whether the session is unrevoked and unexpired and its user active.
    live: bool,
}

fn presented(
    tx: &Transaction<'_>,
    token: &str,
    now: Millis,
) -> rusqlite::Result<Option<Presented>> {
    tx.query_row(
        "SELECT rt.session_id, rt.rotated_at, s.user_id, s.revoked_at, s.expires_at, u.status
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
                live: revoked_at.is_none() && expires_at > now && status == UserStatus::Active,
            })
        },
    )
    .optional()
}

/// Exchanges a refresh token for a new one. A token rotated within `grace_ms` is still
/// honoured (two tabs refreshing at once); an older rotated token revokes the session.
pub fn rotate(
    tx: &Transaction<'_>,
    presented_token: &str,
    now: Millis,
    grace_ms: Millis,
) -> rusqlite::Result<Refresh> {
    let Some(Presented {
        session_id,
        user_id,
        rotated_at,
        live: true,
    }) = presented(tx, presented_token, now)?
    else {
        return Ok(Refresh::Invalid);
    };
    if let Some(rotated_at) = rotated_at
        && now.saturating_sub(rotated_at) > grace_ms
    {
        revoke(
            tx,
            &user_id,
            &session_id,
            RevokeReason::RefreshTokenReuse,
            now,
        )?;
        return Ok(Refresh::Reused {
            session_id,
            user_id,
        });
    }
    // Only the presented token is used up. Inside the grace window a second tab may
    // exchange the same token again, which leaves the session with two live branches
    // until each is used: logging a tab out at random would be worse.
    tx.execute(
        "UPDATE refresh_tokens SET rotated_at = ?2 WHERE token_hash = ?1 AND rotated_at IS NULL",
        params![token_hash(presented_token), now],
    )?;
    tx.execute(
        "UPDATE sessions SET last_used_at = ?2 WHERE id = ?1",
        params![session_id, now],
    )?;
    let refresh_token = issue_refresh_token(tx, &session_id, now)?;
    Ok(Refresh::Rotated {
        session_id,
        user_id,
        refresh_token,
    })
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
        "SELECT id, created_at, last_used_at, expires_at, ip, user_agent FROM sessions
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
