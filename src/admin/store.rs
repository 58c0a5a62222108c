//! What the console reads from other features' tables; admin owns no table of its own.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::roles::{Role, UserStatus};
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::UserId;

/// Tokens a refund could not claw back because the user had already spent them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Shortfall {
    pub id: i64,
    #[schema(value_type = String)]
    pub user_id: UserId,
    pub email: String,
    /// What was refunded, e.g. `refund:ch_...`.
    pub reference: String,
    pub amount: i64,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShortfallsResponse {
    pub shortfalls: Vec<Shortfall>,
    /// Sum of every recorded shortfall (of this user, when filtered).
    pub total: i64,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One page of shortfalls, newest first (optionally one user's), and the sum of all of them.
pub fn shortfalls(
    conn: &Connection,
    user_id: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> rusqlite::Result<(Vec<Shortfall>, i64)> {
    let mut stmt = conn.prepare(
        "SELECT s.id, s.user_id, u.email, s.reference, s.amount, s.created_at
         FROM token_shortfalls s JOIN users u ON u.id = s.user_id
         WHERE (?1 IS NULL OR s.user_id = ?1) AND (?2 IS NULL OR s.id < ?2)
         ORDER BY s.id DESC LIMIT ?3",
    )?;
    let shortfalls = stmt
        .query_map(params![user_id, before, limit], |r| {
            Ok(Shortfall {
                id: r.get(0)?,
                user_id: r.get(1)?,
                email: r.get(2)?,
                reference: r.get(3)?,
                amount: r.get(4)?,
                created_at: rfc3339(r.get(5)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let total: i64 = conn.query_row(
        "SELECT COALESCE(SUM(amount), 0) FROM token_shortfalls WHERE ?1 IS NULL OR user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    Ok((shortfalls, total))
}

/// A user as the console lists them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserRow {
    #[schema(value_type = String)]
    pub id: UserId,
    pub email: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub status: UserStatus,
    pub email_verified: bool,
    /// Whether too many failed logins lock the account now.
    pub locked: bool,
    /// Spendable tokens (held ones excluded).
    pub balance: i64,
    /// The last use of any API session, if any.
    pub last_seen_at: Option<String>,
    pub created_at: String,
}

/// The filters of the users list; `None` does not filter.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Part of the email or display name, or an exact id.
    pub q: Option<String>,
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
    pub verified: Option<bool>,
    pub locked: Option<bool>,
}

const USER_ROW: &str = "SELECT u.id, u.email, p.display_name, u.role, u.status,
        u.email_verified_at IS NOT NULL, COALESCE(u.locked_until, 0) > ?1, u.token_balance,
        (SELECT MAX(s.last_used_at) FROM sessions s WHERE s.user_id = u.id), u.created_at
    FROM users u LEFT JOIN user_profiles p ON p.user_id = u.id";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        email: r.get(1)?,
        display_name: r.get(2)?,
        role: r.get(3)?,
        status: r.get(4)?,
        email_verified: r.get(5)?,
        locked: r.get(6)?,
        balance: r.get(7)?,
        last_seen_at: r.get::<_, Option<Millis>>(8)?.map(rfc3339),
        created_at: rfc3339(r.get(9)?),
    })
}

fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// How many of the newest users a search reads before it asks the trigram index
/// (`user_search`): a common substring fills a page among them, and a substring that
/// does not is rare enough that the index's candidates are few.
const SEARCH_SCAN_WINDOW: u32 = 2000;

/// Which users a page looks at before its filters.
#[derive(Clone, Copy)]
enum Candidates {
    /// Every user, newest first (no search, or one too short for trigrams).
    All,
    /// The `SEARCH_SCAN_WINDOW` newest users below the cursor.
    Newest,
    /// The users whose email or display name the trigram index holds the text in, and
    /// the user whose id is the text.
    Indexed,
}

/// One page of users, newest first.
pub fn user_page(
    conn: &Connection,
    filter: &UserFilter,
    before_id: Option<&str>,
    limit: u32,
    now: Millis,
) -> rusqlite::Result<Vec<UserRow>> {
    // Trigrams need three characters; a shorter search is read by scan.
    if filter.q.as_deref().is_none_or(|q| q.chars().count() < 3) {
        return user_page_of(conn, Candidates::All, filter, before_id, limit, now);
    }
    let newest = user_page_of(conn, Candidates::Newest, filter, before_id, limit, now)?;
    if newest.len() >= limit as usize {
        return Ok(newest);
    }
    user_page_of(conn, Candidates::Indexed, filter, before_id, limit, now)
}

fn user_page_of(
    conn: &Connection,
    candidates: Candidates,
    filter: &UserFilter,
    before_id: Option<&str>,
    limit: u32,
    now: Millis,
) -> rusqlite::Result<Vec<UserRow>> {
    let candidates = match candidates {
        Candidates::All => "1".to_owned(),
        Candidates::Newest => format!(
            "u.id IN (SELECT id FROM users WHERE ?8 IS NULL OR id < ?8
                      ORDER BY id DESC LIMIT {SEARCH_SCAN_WINDOW})"
        ),
        Candidates::Indexed => "u.id IN (SELECT d.user_id FROM user_search s
                      JOIN user_search_docs d ON d.doc = s.rowid WHERE user_search MATCH ?10
                      UNION ALL SELECT ?2)"
            .to_owned(),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "{USER_ROW}
         WHERE {candidates}
           AND (?2 IS NULL OR u.email LIKE ?3 ESCAPE '\\' OR p.display_name LIKE ?3 ESCAPE '\\' OR u.id = ?2)
           AND (?4 IS NULL OR u.role = ?4) AND (?5 IS NULL OR u.status = ?5)
           AND (?6 IS NULL OR (u.email_verified_at IS NOT NULL) = ?6)
           AND (?7 IS NULL OR (COALESCE(u.locked_until, 0) > ?1) = ?7)
           AND (?8 IS NULL OR u.id < ?8)
         ORDER BY u.id DESC LIMIT ?9"
    ))?;
    let pattern = filter.q.as_deref().map(like_pattern);
    // The text as one FTS5 phrase: quoted, inner quotes doubled, so nothing in it is syntax.
    let phrase = filter
        .q
        .as_deref()
        .map(|q| format!("\"{}\"", q.replace('"', "\"\"")));
    let values = params![
        now,
        filter.q,
        pattern,
        filter.role,
        filter.status,
        filter.verified,
        filter.locked,
        before_id,
        limit,
        phrase
    ];
    // Only the index's statement has the phrase (?10).
    let bound = stmt.parameter_count();
    stmt.query_map(&values[..bound], user_row)?.collect()
}

/// One user's row.
pub fn user_row_of(conn: &Connection, id: &str, now: Millis) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        &format!("{USER_ROW} WHERE u.id = ?2"),
        params![now, id],
        user_row,
    )
    .optional()
}

/// An API session as an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSessionView {
    pub id: String,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The user's live API sessions, newest first (at most 200).
pub fn live_sessions(
    conn: &Connection,
    user_id: &str,
    now: Millis,
) -> rusqlite::Result<Vec<AdminSessionView>> {
    let mut stmt = conn.prepare(
        "SELECT id, created_at, last_used_at, expires_at, ip, user_agent FROM sessions
         WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
         ORDER BY created_at DESC, id DESC LIMIT 200",
    )?;
    stmt.query_map(params![user_id, now], |r| {
        Ok(AdminSessionView {
            id: r.get(0)?,
            created_at: rfc3339(r.get(1)?),
            last_used_at: rfc3339(r.get(2)?),
            expires_at: rfc3339(r.get(3)?),
            ip: r.get(4)?,
            user_agent: r.get(5)?,
        })
    })?
    .collect()
}
