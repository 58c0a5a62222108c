//! The users and user_profiles tables: the SQL behind accounts.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::roles::{Role, UserStatus};
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::UserId;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    #[schema(value_type = String)]
    pub id: UserId,
    pub email: String,
    pub role: Role,
    pub status: UserStatus,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub created_at: String,
}

/// A user with their profile.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileView {
    #[serde(flatten)]
    pub user: UserView,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    /// A JSON object of the app's choosing.
    #[schema(value_type = Object)]
    pub preferences: Value,
    pub token_balance: i64,
    /// Whether two-factor sign-in is on (an enrolment confirmed with a code).
    pub mfa_enabled: bool,
}

/// What login needs to know about an account.
#[derive(Clone)]
pub struct Credentials {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub status: UserStatus,
}

const USER_COLUMNS: &str =
    "u.id, u.email, u.role, u.status, u.email_verified_at, p.display_name, u.created_at";

/// Every user with their profile row, if any.
const USERS_WITH_PROFILES: &str = "users u LEFT JOIN user_profiles p ON p.user_id = u.id";

const CREDENTIALS: &str = "SELECT id, password_hash, status, email FROM users";

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserView> {
    Ok(UserView {
        id: r.get(0)?,
        email: r.get(1)?,
        role: r.get(2)?,
        status: r.get(3)?,
        email_verified: r.get::<_, Option<Millis>>(4)?.is_some(),
        display_name: r.get(5)?,
        created_at: rfc3339(r.get(6)?),
    })
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub display_name: Option<&'a str>,
    pub email_verified: bool,
}

/// Inserts a user and an empty profile; `None` when the email is taken.
pub fn insert(
    tx: &Transaction<'_>,
    new: &NewUser<'_>,
    now: Millis,
) -> rusqlite::Result<Option<UserId>> {
    let id = UserId::from(uuid::Uuid::now_v7().to_string());
    let inserted = tx.execute(
        "INSERT INTO users (id, email, password_hash, role, email_verified_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (email) DO NOTHING",
        params![id, new.email, new.password_hash, new.role, new.email_verified.then_some(now), now],
    )?;
    if inserted == 0 {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO user_profiles (user_id, display_name, updated_at) VALUES (?1, ?2, ?3)",
        params![id, new.display_name, now],
    )?;
    Ok(Some(id))
}

pub fn email_taken(conn: &Connection, email: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1)",
        [email],
        |r| r.get(0),
    )
}

pub fn find_user(conn: &Connection, user_id: &UserId) -> rusqlite::Result<Option<UserView>> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM {USERS_WITH_PROFILES} WHERE u.id = ?1"),
        [user_id],
        user_from_row,
    )
    .optional()
}

/// The active account with this (normalised) email.
pub fn find_id_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<UserId>> {
    conn.query_row(
        "SELECT id FROM users WHERE email = ?1 AND status = ?2",
        params![email, UserStatus::Active],
        |r| r.get(0),
    )
    .optional()
}

pub fn find_credentials(conn: &Connection, email: &str) -> rusqlite::Result<Option<Credentials>> {
    conn.query_row(
        &format!("{CREDENTIALS} WHERE email = ?1"),
        [email],
        credentials_from_row,
    )
    .optional()
}

pub fn credentials_by_id(
    conn: &Connection,
    user_id: &UserId,
) -> rusqlite::Result<Option<Credentials>> {
    conn.query_row(
        &format!("{CREDENTIALS} WHERE id = ?1"),
        [user_id],
        credentials_from_row,
    )
    .optional()
}

fn credentials_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Credentials> {
    Ok(Credentials {
        id: r.get(0)?,
        password_hash: r.get(1)?,
        status: r.get(2)?,
        email: r.get(3)?,
    })
}

/// Swaps the hash only if it is still the one that was verified; returns whether it did.
pub fn replace_password_hash(
    tx: &Transaction<'_>,
    user_id: &UserId,
    verified: &str,
    new_hash: &str,
    now: Millis,
) -> rusqlite::Result<bool> {
    let changed = tx.execute(
        "UPDATE users SET password_hash = ?3, updated_at = ?4 WHERE id = ?1 AND password_hash = ?2",
        params![user_id, verified, new_hash, now],
    )?;
    Ok(changed == 1)
}

pub fn set_password_hash(
    tx: &Transaction<'_>,
    user_id: &UserId,
    hash: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![user_id, hash, now],
    )?;
    Ok(())
}

pub fn mark_email_verified(
    tx: &Transaction<'_>,
    user_id: &UserId,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, ?2), updated_at = ?2 WHERE id = ?1",
        params![user_id, now],
    )?;
    Ok(())
}

pub fn clear_login_failures(tx: &Transaction<'_>, user_id: &UserId) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE users SET failed_login_count = 0, failed_login_window_start = NULL, locked_until = NULL WHERE id = ?1",
        [user_id],
    )?;
    Ok(())
}

pub fn profile(conn: &Connection, user_id: &UserId) -> rusqlite::Result<Option<ProfileView>> {
    conn.query_row(
        &format!(
            "SELECT {USER_COLUMNS}, p.bio, p.avatar_url, COALESCE(p.preferences, '{{}}'), u.token_balance,
                    EXISTS (SELECT 1 FROM user_mfa m WHERE m.user_id = u.id AND m.confirmed_at IS NOT NULL)
             FROM {USERS_WITH_PROFILES} WHERE u.id = ?1"
        ),
        [user_id],
        |r| {
            let preferences: String = r.get(9)?;
            Ok(ProfileView {
                user: user_from_row(r)?,
                bio: r.get(7)?,
                avatar_url: r.get(8)?,
                preferences: serde_json::from_str(&preferences).unwrap_or(Value::Object(Default::default())),
                token_balance: r.get(10)?,
                mfa_enabled: r.get(11)?,
            })
        },
    )
    .optional()
}

/// Profile fields to change; `None` leaves a field as it is, an empty string clears it.
pub struct ProfileChange {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub preferences: Option<Value>,
}

pub fn update_profile(
    tx: &Transaction<'_>,
    user_id: &UserId,
    change: &ProfileChange,
    now: Millis,
) -> rusqlite::Result<()> {
    let blank_to_null = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_owned());
    tx.execute(
        "INSERT INTO user_profiles (user_id, updated_at) VALUES (?1, ?2) ON CONFLICT (user_id) DO NOTHING",
        params![user_id, now],
    )?;
    tx.execute(
        "UPDATE user_profiles SET
            display_name = CASE WHEN ?2 IS NULL THEN display_name ELSE NULLIF(?2, '') END,
            bio          = CASE WHEN ?3 IS NULL THEN bio ELSE NULLIF(?3, '') END,
            avatar_url   = CASE WHEN ?4 IS NULL THEN avatar_url ELSE NULLIF(?4, '') END,
            preferences  = COALESCE(?5, preferences),
            updated_at   = ?6
         WHERE user_id = ?1",
        params![
            user_id,
            blank_to_null(&change.display_name),
            change.bio,
            blank_to_null(&change.avatar_url),
            change.preferences.as_ref().map(Value::to_string),
            now
        ],
    )?;
    Ok(())
}

/// One page of users, newest first, optionally filtered by an email substring.
pub fn page(
    conn: &Connection,
    email_contains: Option<&str>,
    before_id: Option<&str>,
    limit: u32,
) -> rusqlite::Result<Vec<UserView>> {
    let pattern = email_contains.map(|s| {
        format!(
            "%{}%",
            s.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let mut stmt = conn.prepare(&format!(
        "SELECT {USER_COLUMNS} FROM {USERS_WITH_PROFILES}
         WHERE (?1 IS NULL OR u.email LIKE ?1 ESCAPE '\\') AND (?2 IS NULL OR u.id < ?2)
         ORDER BY u.id DESC LIMIT ?3"
    ))?;
    stmt.query_map(params![pattern, before_id, limit], user_from_row)?
        .collect()
}

/// Every user, oldest first.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<UserView>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {USER_COLUMNS} FROM {USERS_WITH_PROFILES} ORDER BY u.id"
    ))?;
    stmt.query_map([], user_from_row)?.collect()
}
