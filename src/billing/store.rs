//! Billing's SQL: plans and packs, Stripe customers, subscriptions as last seen, checkout sessions, the change history.
//!
//! Plain statements on a connection or inside the caller's write transaction; nothing
//! here talks to Stripe. The event handlers use the same functions to record what Stripe
//! tells them (`upsert_subscription`, `record_change`).

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::stripe;
use crate::platform::clock::{Millis, rfc3339};

/// A subscription plan as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// In the smallest currency unit (cents); 0 for the free plan.
    pub price_cents: i64,
    pub currency: String,
    /// `month` or `year`.
    pub interval: String,
    /// Tokens granted for each month of the plan.
    pub monthly_tokens: i64,
    pub features: Vec<String>,
    /// The plan costs nothing and needs no checkout.
    pub free: bool,
    /// A checkout can be started for it (it has a Stripe price), or it is free.
    pub available: bool,
}

/// A plan with what billing needs beyond the view.
#[derive(Debug, Clone)]
pub struct Plan {
    pub view: PlanView,
    pub active: bool,
    pub stripe_price_id: Option<String>,
}

const PLAN_COLUMNS: &str = "id, name, description, price_cents, currency, billing_interval, monthly_tokens, features, active, stripe_price_id";

fn plan_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Plan> {
    let features: String = r.get(7)?;
    let price_cents: i64 = r.get(3)?;
    let stripe_price_id: Option<String> = r.get(9)?;
    let features = match serde_json::from_str::<Value>(&features) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Plan {
        view: PlanView {
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            price_cents,
            currency: r.get(4)?,
            interval: r.get(5)?,
            monthly_tokens: r.get(6)?,
            features,
            free: price_cents == 0,
            available: price_cents == 0 || stripe_price_id.is_some(),
        },
        active: r.get::<_, i64>(8)? == 1,
        stripe_price_id,
    })
}

/// Active plans, in catalogue order.
pub fn active_plans(conn: &Connection) -> rusqlite::Result<Vec<PlanView>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE active = 1 ORDER BY sort_order, price_cents, id"
    ))?;
    stmt.query_map([], plan_from_row)?
        .map(|p| p.map(|p| p.view))
        .collect()
}

/// Any plan by id, active or not.
pub fn plan(conn: &Connection, id: &str) -> rusqlite::Result<Option<Plan>> {
    conn.query_row(
        &format!("SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE id = ?1"),
        [id],
        plan_from_row,
    )
    .optional()
}

/// The plan sold at a Stripe price.
pub fn plan_by_price(conn: &Connection, price_id: &str) -> rusqlite::Result<Option<Plan>> {
    conn.query_row(
        &format!("SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE stripe_price_id = ?1"),
        [price_id],
        plan_from_row,
    )
    .optional()
}

/// The plan everyone has without a subscription: the first active plan that costs nothing.
pub fn free_plan(conn: &Connection) -> rusqlite::Result<Option<PlanView>> {
    conn.query_row(
        &format!(
            "SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE active = 1 AND price_cents = 0 ORDER BY sort_order, id LIMIT 1"
        ),
        [],
        plan_from_row,
    )
    .optional()
    .map(|p| p.map(|p| p.view))
}

/// A token pack with its Stripe price.
#[derive(Debug, Clone)]
pub struct Pack {
    pub id: String,
    pub name: String,
    pub tokens: i64,
    pub price_cents: i64,
    pub currency: String,
    pub active: bool,
    pub stripe_price_id: Option<String>,
}

pub fn pack(conn: &Connection, id: &str) -> rusqlite::Result<Option<Pack>> {
    conn.query_row(
        "SELECT id, name, tokens, price_cents, currency, active, stripe_price_id FROM token_packs WHERE id = ?1",
        [id],
        |r| {
            Ok(Pack {
                id: r.get(0)?,
                name: r.get(1)?,
                tokens: r.get(2)?,
                price_cents: r.get(3)?,
                currency: r.get(4)?,
                active: r.get::<_, i64>(5)? == 1,
                stripe_price_id: r.get(6)?,
            })
        },
    )
    .optional()
}

/// The user's email and Stripe customer id, if the user exists.
pub fn customer_of(
    conn: &Connection,
    user_id: &str,
) -> rusqlite::Result<Option<(String, Option<String>)>> {
    conn.query_row(
        "SELECT email, stripe_customer_id FROM users WHERE id = ?1",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Records the user's Stripe customer unless one is recorded already; returns the one
/// that stands and whether it is the one just given.
pub fn set_customer(
    tx: &Transaction<'_>,
    user_id: &str,
    customer_id: &str,
    now: Millis,
) -> rusqlite::Result<(String, bool)> {
    let changed = tx.execute(
        "UPDATE users SET stripe_customer_id = ?2, updated_at = ?3 WHERE id = ?1 AND stripe_customer_id IS NULL",
        params![user_id, customer_id, now],
    )?;
    let stored: Option<String> = tx.query_row(
        "SELECT stripe_customer_id FROM users WHERE id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    Ok((
        stored.unwrap_or_else(|| customer_id.to_owned()),
        changed == 1,
    ))
}

/// The user owning a Stripe customer.
pub fn user_by_customer(conn: &Connection, customer_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT id FROM users WHERE stripe_customer_id = ?1",
        [customer_id],
        |r| r.get(0),
    )
    .optional()
}

/// A row of `user_subscriptions`.
#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    pub id: String,
    pub user_id: String,
    pub plan_id: String,
    pub stripe_subscription_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub status: String,
    pub current_period_start: Option<Millis>,
    pub current_period_end: Option<Millis>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<Millis>,
    pub created_at: Millis,
}

const SUBSCRIPTION_COLUMNS: &str = "id, user_id, plan_id, stripe_subscription_id, stripe_customer_id, status, current_period_start, current_period_end, cancel_at_period_end, canceled_at, created_at";

fn subscription_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriptionRow> {
    Ok(SubscriptionRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        plan_id: r.get(2)?,
        stripe_subscription_id: r.get(3)?,
        stripe_customer_id: r.get(4)?,
        status: r.get(5)?,
        current_period_start: r.get(6)?,
        current_period_end: r.get(7)?,
        cancel_at_period_end: r.get::<_, i64>(8)? == 1,
        canceled_at: r.get(9)?,
        created_at: r.get(10)?,
    })
}

/// The statuses of a subscription that is still running (not ended, not an abandoned first payment).
pub const LIVE_STATUSES: [&str; 5] = ["active", "trialing", "past_due", "unpaid", "paused"];

/// The user's running subscription, the newest if several.
pub fn live_subscription(
    conn: &Connection,
    user_id: &str,
) -> rusqlite::Result<Option<SubscriptionRow>> {
    conn.query_row(
        &format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM user_subscriptions
             WHERE user_id = ?1 AND status IN ('active', 'trialing', 'past_due', 'unpaid', 'paused')
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ),
        [user_id],
        subscription_from_row,
    )
    .optional()
}

/// The user's subscriptions, newest first.
pub fn subscriptions_of(
    conn: &Connection,
    user_id: &str,
    limit: u32,
) -> rusqlite::Result<Vec<SubscriptionRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM user_subscriptions WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2"
    ))?;
    stmt.query_map(params![user_id, limit], subscription_from_row)?
        .collect()
}

pub fn subscription_by_stripe_id(
    conn: &Connection,
    stripe_subscription_id: &str,
) -> rusqlite::Result<Option<SubscriptionRow>> {
    conn.query_row(
        &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM user_subscriptions WHERE stripe_subscription_id = ?1"),
        [stripe_subscription_id],
        subscription_from_row,
    )
    .optional()
}

fn secs_to_ms(secs: Option<i64>) -> Option<Millis> {
    secs.and_then(|s| s.checked_mul(1000))
}

/// Stores a subscription as Stripe describes it now: inserted the first time, updated
/// after. `plan_id` is the plan its price sells. Returns our row, before and after.
pub fn upsert_subscription(
    tx: &Transaction<'_>,
    user_id: &str,
    plan_id: &str,
    subscription: &stripe::Subscription,
    now: Millis,
) -> rusqlite::Result<(Option<SubscriptionRow>, SubscriptionRow)> {
    let before = subscription_by_stripe_id(tx, &subscription.id)?;
    let (start, end) = subscription.period();
    let canceled_at = secs_to_ms(subscription.ended_at.or(subscription.canceled_at));
    match &before {
        Some(row) => {
            tx.execute(
                "UPDATE user_subscriptions SET plan_id = ?2, status = ?3, current_period_start = ?4, current_period_end = ?5,
                        cancel_at_period_end = ?6, canceled_at = ?7, stripe_customer_id = COALESCE(?8, stripe_customer_id), updated_at = ?9
                 WHERE id = ?1",
                params![
                    row.id,
                    plan_id,
                    subscription.status,
                    secs_to_ms(start),
                    secs_to_ms(end),
                    subscription.cancel_at_period_end,
                    canceled_at,
                    subscription.customer,
                    now
                ],
            )?;
        }
        None => {
            tx.execute(
                "INSERT INTO user_subscriptions (id, user_id, plan_id, stripe_subscription_id, stripe_customer_id, status,
                        current_period_start, current_period_end, cancel_at_period_end, canceled_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                params![
                    uuid::Uuid::now_v7().to_string(),
                    user_id,
                    plan_id,
                    subscription.id,
                    subscription.customer,
                    subscription.status,
                    secs_to_ms(start),
                    secs_to_ms(end),
                    subscription.cancel_at_period_end,
                    canceled_at,
                    now
                ],
            )?;
        }
    }
    let after = subscription_by_stripe_id(tx, &subscription.id)?
        .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    Ok((before, after))
}

/// One entry of a user's subscription story.
pub struct Change<'a> {
    pub user_id: &'a str,
    pub stripe_subscription_id: Option<&'a str>,
    /// See the `subscription_changes.kind` CHECK in migration V4.
    pub kind: &'a str,
    pub from_plan_id: Option<&'a str>,
    pub to_plan_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub details: Value,
}

pub fn record_change(
    tx: &Transaction<'_>,
    change: &Change<'_>,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO subscription_changes (user_id, stripe_subscription_id, kind, from_plan_id, to_plan_id, status, details, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            change.user_id,
            change.stripe_subscription_id,
            change.kind,
            change.from_plan_id,
            change.to_plan_id,
            change.status,
            change.details.to_string(),
            now
        ],
    )?;
    Ok(())
}

/// A change as the history shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeView {
    /// `checkout_started`, `started`, `renewed`, `plan_changed`, `cancel_scheduled`, `resumed`, `canceled` or `status_changed`.
    pub kind: String,
    pub from_plan_id: Option<String>,
    pub to_plan_id: Option<String>,
    pub status: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    pub at: String,
}

pub fn changes_of(
    conn: &Connection,
    user_id: &str,
    limit: u32,
) -> rusqlite::Result<Vec<ChangeView>> {
    let mut stmt = conn.prepare(
        "SELECT kind, from_plan_id, to_plan_id, status, details, created_at FROM subscription_changes
         WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    stmt.query_map(params![user_id, limit], |r| {
        let details: String = r.get(4)?;
        Ok(ChangeView {
            kind: r.get(0)?,
            from_plan_id: r.get(1)?,
            to_plan_id: r.get(2)?,
            status: r.get(3)?,
            details: serde_json::from_str(&details).unwrap_or(Value::Null),
            at: rfc3339(r.get(5)?),
        })
    })?
    .collect()
}

/// A Checkout Session we created.
#[derive(Debug, Clone)]
pub struct CheckoutRow {
    pub id: String,
    pub user_id: String,
    pub mode: String,
    pub plan_id: Option<String>,
    pub pack_id: Option<String>,
    pub status: String,
}

pub struct NewCheckout<'a> {
    pub session: &'a stripe::CheckoutSession,
    pub user_id: &'a str,
    pub mode: stripe::CheckoutMode,
    pub plan_id: Option<&'a str>,
    pub pack_id: Option<&'a str>,
    pub customer_id: &'a str,
}

fn session_status(status: Option<&str>) -> &'static str {
    match status {
        Some("complete") => "complete",
        Some("expired") => "expired",
        _ => "open",
    }
}

/// Records a session; false when it was recorded already (a replayed request).
pub fn insert_checkout(
    tx: &Transaction<'_>,
    new: &NewCheckout<'_>,
    now: Millis,
) -> rusqlite::Result<bool> {
    let inserted = tx.execute(
        "INSERT INTO billing_checkout_sessions (id, user_id, mode, plan_id, pack_id, status, payment_status, stripe_customer_id, url, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) ON CONFLICT (id) DO NOTHING",
        params![
            new.session.id,
            new.user_id,
            new.mode.as_str(),
            new.plan_id,
            new.pack_id,
            session_status(new.session.status.as_deref()),
            new.session.payment_status,
            new.customer_id,
            new.session.url,
            secs_to_ms(new.session.expires_at),
            now
        ],
    )?;
    Ok(inserted == 1)
}

/// A session, only if `user_id` started it.
pub fn checkout_of(
    conn: &Connection,
    user_id: &str,
    id: &str,
) -> rusqlite::Result<Option<CheckoutRow>> {
    conn.query_row(
        "SELECT id, user_id, mode, plan_id, pack_id, status FROM billing_checkout_sessions WHERE id = ?1 AND user_id = ?2",
        params![id, user_id],
        |r| {
            Ok(CheckoutRow {
                id: r.get(0)?,
                user_id: r.get(1)?,
                mode: r.get(2)?,
                plan_id: r.get(3)?,
                pack_id: r.get(4)?,
                status: r.get(5)?,
            })
        },
    )
    .optional()
}

/// Notes the latest status Stripe gave for a session.
pub fn update_checkout(
    tx: &Transaction<'_>,
    session: &stripe::CheckoutSession,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE billing_checkout_sessions SET status = ?2, payment_status = COALESCE(?3, payment_status), updated_at = ?4 WHERE id = ?1",
        params![
            session.id,
            session_status(session.status.as_deref()),
            session.payment_status,
            now
        ],
    )?;
    Ok(())
}

/// A pending token-pack purchase, keyed by its Checkout Session; false if it exists already.
pub fn insert_pending_pack(
    tx: &Transaction<'_>,
    user_id: &str,
    pack: &Pack,
    session_id: &str,
    now: Millis,
) -> rusqlite::Result<bool> {
    let inserted = tx.execute(
        "INSERT INTO user_token_packs (id, user_id, pack_id, tokens, amount_cents, currency, status, stripe_checkout_session_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8) ON CONFLICT (stripe_checkout_session_id) DO NOTHING",
        params![
            uuid::Uuid::now_v7().to_string(),
            user_id,
            pack.id,
            pack.tokens,
            pack.price_cents,
            pack.currency,
            session_id,
            now
        ],
    )?;
    Ok(inserted == 1)
}
