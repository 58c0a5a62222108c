//! `user_subscriptions` (each subscription as Stripe last described it) and `subscription_changes` (the story a user sees).

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::secs_to_ms;
use crate::billing::status::{ChangeKind, SubscriptionStatus};
use crate::billing::stripe;
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::{PlanId, UserId};

/// A row of `user_subscriptions`.
#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    pub id: String,
    pub user_id: UserId,
    pub plan_id: PlanId,
    pub stripe_subscription_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub status: SubscriptionStatus,
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

/// `'active', 'trialing', ...`: the live statuses as an SQL list.
fn live_in_sql() -> String {
    SubscriptionStatus::live()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The user's running subscription, the newest if several.
pub fn live_subscription(
    conn: &Connection,
    user_id: &UserId,
) -> rusqlite::Result<Option<SubscriptionRow>> {
    conn.query_row(
        &format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM user_subscriptions
             WHERE user_id = ?1 AND status IN ({})
             ORDER BY created_at DESC, id DESC LIMIT 1",
            live_in_sql()
        ),
        [user_id],
        subscription_from_row,
    )
    .optional()
}

/// The user's newest subscription when its first payment is still pending (`incomplete`:
/// waiting for 3-D Secure, or declined and not yet retried), so that it can be shown
/// with Stripe's status rather than as the free plan. `None` once any later subscription
/// exists or the pending one expired.
pub fn pending_subscription(
    conn: &Connection,
    user_id: &UserId,
) -> rusqlite::Result<Option<SubscriptionRow>> {
    let newest = subscriptions_of(conn, user_id, 1)?.pop();
    Ok(newest.filter(|row| row.status == SubscriptionStatus::Incomplete))
}

/// The user's subscriptions, newest first.
pub fn subscriptions_of(
    conn: &Connection,
    user_id: &UserId,
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

/// Stores a subscription as Stripe describes it now: inserted the first time, updated
/// after. `plan_id` is the plan its price sells. Returns our row, before and after.
pub fn upsert_subscription(
    tx: &Transaction<'_>,
    user_id: &UserId,
    plan_id: &PlanId,
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
    pub user_id: &'a UserId,
    pub stripe_subscription_id: Option<&'a str>,
    pub kind: ChangeKind,
    pub from_plan_id: Option<&'a PlanId>,
    pub to_plan_id: Option<&'a PlanId>,
    pub status: Option<SubscriptionStatus>,
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
    user_id: &UserId,
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
