//! One user's billing as the console shows it, from our own tables (no Stripe call):
//! the customer, the newest subscription, its story and the token pack purchases.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::platform::clock::{Millis, rfc3339};

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionSummary {
    pub id: String,
    pub plan_id: String,
    pub plan_name: Option<String>,
    pub status: String,
    pub stripe_subscription_id: Option<String>,
    pub current_period_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeRow {
    pub id: i64,
    pub kind: String,
    pub from_plan_id: Option<String>,
    pub to_plan_id: Option<String>,
    pub status: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseRow {
    pub id: String,
    pub pack_id: String,
    pub tokens: i64,
    pub amount_cents: i64,
    pub currency: String,
    /// pending, completed, refunded or failed.
    pub status: String,
    pub created_at: String,
    pub completed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserBilling {
    pub stripe_customer_id: Option<String>,
    pub subscription: Option<SubscriptionSummary>,
    /// Newest first, at most 100.
    pub changes: Vec<ChangeRow>,
    /// Newest first, at most 100.
    pub purchases: Vec<PurchaseRow>,
}

fn time(ms: Option<Millis>) -> Option<String> {
    ms.map(rfc3339)
}

fn subscription(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<SubscriptionSummary>> {
    conn.query_row(
        "SELECT s.id, s.plan_id, p.name, s.status, s.stripe_subscription_id, s.current_period_end,
                s.cancel_at_period_end, s.canceled_at, s.created_at
         FROM user_subscriptions s LEFT JOIN subscription_plans p ON p.id = s.plan_id
         WHERE s.user_id = ?1 ORDER BY s.created_at DESC, s.id DESC LIMIT 1",
        [user_id],
        |r| {
            Ok(SubscriptionSummary {
                id: r.get(0)?,
                plan_id: r.get(1)?,
                plan_name: r.get(2)?,
                status: r.get(3)?,
                stripe_subscription_id: r.get(4)?,
                current_period_end: time(r.get(5)?),
                cancel_at_period_end: r.get::<_, i64>(6)? == 1,
                canceled_at: time(r.get(7)?),
                created_at: rfc3339(r.get(8)?),
            })
        },
    )
    .optional()
}

fn changes(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<ChangeRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, kind, from_plan_id, to_plan_id, status, details, created_at
         FROM subscription_changes WHERE user_id = ?1 ORDER BY id DESC LIMIT 100",
    )?;
    stmt.query_map([user_id], |r| {
        let details: String = r.get(5)?;
        Ok(ChangeRow {
            id: r.get(0)?,
            kind: r.get(1)?,
            from_plan_id: r.get(2)?,
            to_plan_id: r.get(3)?,
            status: r.get(4)?,
            details: serde_json::from_str(&details).unwrap_or(Value::Null),
            created_at: rfc3339(r.get(6)?),
        })
    })?
    .collect()
}

fn purchases(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<PurchaseRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, pack_id, tokens, amount_cents, currency, status, created_at, completed_at
         FROM user_token_packs WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 100",
    )?;
    stmt.query_map([user_id], |r| {
        Ok(PurchaseRow {
            id: r.get(0)?,
            pack_id: r.get(1)?,
            tokens: r.get(2)?,
            amount_cents: r.get(3)?,
            currency: r.get(4)?,
            status: r.get(5)?,
            created_at: rfc3339(r.get(6)?),
            completed_at: time(r.get(7)?),
        })
    })?
    .collect()
}

/// The user's billing, if the user exists.
pub fn of_user(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<UserBilling>> {
    let customer: Option<Option<String>> = conn
        .query_row(
            "SELECT stripe_customer_id FROM users WHERE id = ?1",
            [user_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(stripe_customer_id) = customer else {
        return Ok(None);
    };
    Ok(Some(UserBilling {
        stripe_customer_id,
        subscription: subscription(conn, user_id)?,
        changes: changes(conn, user_id)?,
        purchases: purchases(conn, user_id)?,
    }))
}
