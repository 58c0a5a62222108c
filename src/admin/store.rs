//! What the console reads from other features' tables; admin owns no table of its own.

use rusqlite::Connection;
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::clock::rfc3339;
use crate::platform::ids::UserId;

/// Tokens a refund could not claw back because the user had already spent them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Shortfall {
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
    /// Sum of every recorded shortfall.
    pub total: i64,
}

/// The newest `limit` shortfalls and the sum of all of them.
pub fn shortfalls(conn: &Connection, limit: u32) -> rusqlite::Result<ShortfallsResponse> {
    let mut stmt = conn.prepare(
        "SELECT s.user_id, u.email, s.reference, s.amount, s.created_at
         FROM token_shortfalls s JOIN users u ON u.id = s.user_id ORDER BY s.id DESC LIMIT ?1",
    )?;
    let shortfalls = stmt
        .query_map([limit], |r| {
            Ok(Shortfall {
                user_id: r.get(0)?,
                email: r.get(1)?,
                reference: r.get(2)?,
                amount: r.get(3)?,
                created_at: rfc3339(r.get(4)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let total: i64 = conn.query_row(
        "SELECT COALESCE(SUM(amount), 0) FROM token_shortfalls",
        [],
        |r| r.get(0),
    )?;
    Ok(ShortfallsResponse { shortfalls, total })
}
