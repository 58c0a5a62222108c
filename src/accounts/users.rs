//! The old path of the accounts store (`accounts::users`), for callers outside accounts
//! that still hold user ids as text; new code uses [`super::store`].

pub use super::store::*;

/// [`super::store::find_id_by_email`] as text, for `tokens::add_tokens` and the CLI's
/// `tokens` command, which still hold user ids as `String`.
pub fn find_id_by_email(
    conn: &rusqlite::Connection,
    email: &str,
) -> rusqlite::Result<Option<String>> {
    Ok(super::store::find_id_by_email(conn, email)?.map(|id| id.to_string()))
}
