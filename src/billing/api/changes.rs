//! What cancel, resume and update share: the caller's running subscription, and recording what Stripe answered about it.

use serde_json::json;

use crate::billing::status::ChangeKind;
use crate::billing::store::{self, Change, SubscriptionRow};
use crate::billing::stripe;
use crate::http::error::{ApiError, ApiResult};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::ids::{PlanId, UserId};
use crate::state::App;

/// The caller's running subscription with its Stripe id, or the 409 that says there is none.
pub(crate) async fn live_or_conflict(
    app: &App,
    user_id: &UserId,
) -> ApiResult<(SubscriptionRow, String)> {
    let owner = user_id.clone();
    let row = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::live_subscription(c, &owner)?))
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(
                "you have no running subscription; start one with POST /api/subscriptions/checkout"
                    .into(),
            )
        })?;
    let stripe_id = row.stripe_subscription_id.clone().ok_or_else(|| {
        ApiError::Conflict("this subscription is not managed through Stripe".into())
    })?;
    Ok((row, stripe_id))
}

/// A change the caller made to their subscription, as Stripe answered it.
pub(crate) struct Changed {
    pub actor: Actor,
    /// Our row before the change.
    pub row: SubscriptionRow,
    pub subscription: stripe::Subscription,
    pub kind: ChangeKind,
    /// The audit action, e.g. `billing.subscription_cancel`.
    pub action: &'static str,
    /// The plan to record when Stripe's price sells none of ours.
    pub fallback_plan: PlanId,
    pub details: serde_json::Value,
}

/// Stores what Stripe answered about a subscription, with a history entry and an audit row.
pub(crate) async fn record_subscription(app: &App, changed: Changed) -> ApiResult<()> {
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            let Changed {
                actor,
                row,
                subscription,
                kind,
                action,
                fallback_plan,
                details,
            } = changed;
            let plan_id = match subscription.price_id() {
                Some(price) => store::plan_by_price(tx, price)?.map(|p| p.view.id),
                None => None,
            }
            .unwrap_or(fallback_plan);
            store::upsert_subscription(tx, &row.user_id, &plan_id, &subscription, now)?;
            let change = Change {
                user_id: &row.user_id,
                stripe_subscription_id: Some(&subscription.id),
                kind,
                from_plan_id: Some(&row.plan_id),
                to_plan_id: Some(&plan_id),
                status: Some(subscription.status),
                details: details.clone(),
            };
            store::record_change(tx, &change, now)?;
            let mut details = details;
            if let Some(map) = details.as_object_mut() {
                map.insert("stripe_subscription_id".into(), json!(subscription.id));
                map.insert("from_plan_id".into(), json!(row.plan_id));
                map.insert("to_plan_id".into(), json!(plan_id));
                map.insert("status".into(), json!(subscription.status));
            }
            let event = Event::new(action)
                .target("subscription", &row.id)
                .details(details);
            audit::record(tx, now, &actor, event)?;
            Ok::<_, ApiError>(())
        })
        .await
}
