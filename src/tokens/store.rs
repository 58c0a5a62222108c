//! The SQL of the token catalogue (`token_packs`) and of spending analytics (`usage_analytics`).

use rusqlite::{Connection, Transaction, params};
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::clock::Millis;
use crate::platform::ids::{PackId, UserId};

// A token pack on sale (no doc comment: it would change the OpenAPI schema).
#[derive(Debug, Serialize, ToSchema)]
pub struct PackView {
    #[schema(value_type = String)]
    pub id: PackId,
    pub name: String,
    pub description: Option<String>,
    pub tokens: i64,
    pub price_cents: i64,
    pub currency: String,
}

/// The active packs in display order.
pub fn active_packs(conn: &Connection) -> rusqlite::Result<Vec<PackView>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, description, tokens, price_cents, currency FROM token_packs
         WHERE active = 1 ORDER BY sort_order, price_cents",
    )?;
    stmt.query_map([], |r| {
        Ok(PackView {
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            tokens: r.get(3)?,
            price_cents: r.get(4)?,
            currency: r.get(5)?,
        })
    })?
    .collect()
}

/// A pack of the seeded catalogue.
pub struct NewPack {
    pub id: &'static str,
    pub name: &'static str,
    pub tokens: i64,
    pub price_cents: i64,
}

/// Adds `pack` at `sort_order` unless a pack with its id exists; 1 if added, else 0.
pub fn insert_pack(
    tx: &Transaction<'_>,
    pack: &NewPack,
    sort_order: i64,
    now: Millis,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO token_packs (id, name, tokens, price_cents, sort_order, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT DO NOTHING",
        params![pack.id, pack.name, pack.tokens, pack.price_cents, sort_order, now],
    )
}

/// Counts `tokens` spent on `feature` for the analytics report.
pub fn record_usage(
    tx: &Transaction<'_>,
    user_id: &UserId,
    feature: &str,
    tokens: i64,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO usage_analytics (user_id, event, feature, tokens_used, created_at) VALUES (?1, 'tokens_spent', ?2, ?3, ?4)",
    )?
    .execute(params![user_id, feature, tokens, now])?;
    Ok(())
}
