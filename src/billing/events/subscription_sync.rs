//! `customer.subscription.*`: our copy of a subscription follows Stripe's, with a history entry for each change.

use serde_json::json;

use super::errors::sweeper_actor;
use super::{BillingEvents, EventError};
use crate::billing::status::{ChangeKind, SubscriptionStatus};
use crate::billing::store::{self, SubscriptionRow};
use crate::billing::stripe::{self, Stripe};
use crate::platform::audit::{self, Event};

/// What changed between our row before and after a sync, if anything worth a history entry.
fn change_kind(before: Option<&SubscriptionRow>, after: &SubscriptionRow) -> Option<ChangeKind> {
    let Some(b) = before else {
        return Some(ChangeKind::Started);
    };
    Some(if b.plan_id != after.plan_id {
        ChangeKind::PlanChanged
    } else if !b.cancel_at_period_end && after.cancel_at_period_end {
        ChangeKind::CancelScheduled
    } else if b.cancel_at_period_end && !after.cancel_at_period_end {
        ChangeKind::Resumed
    } else if b.status != after.status && after.status == SubscriptionStatus::Canceled {
        ChangeKind::Canceled
    } else if b.status != after.status {
        ChangeKind::StatusChanged
    } else if b.current_period_start.is_some()
        && after.current_period_start > b.current_period_start
    {
        // A new period began: the renewal shows in the history.
        ChangeKind::Renewed
    } else {
        return None;
    })
}

impl BillingEvents {
    /// Brings our copy of a subscription up to Stripe's current state.
    pub(crate) async fn sync_subscription(
        &self,
        stripe: &Stripe,
        id: &str,
    ) -> Result<stripe::Subscription, EventError> {
        let subscription = stripe.get_subscription(id).await?;
        let user_id = self
            .user_of_customer(
                subscription.customer.as_deref(),
                subscription.metadata.get("user_id").map(String::as_str),
            )
            .await?;
        let price = subscription
            .price_id()
            .ok_or_else(|| EventError::Unusable(format!("subscription {id} has no price")))?
            .to_owned();
        let now = self.clock.now_ms();
        let sub = subscription.clone();
        self.db
            .write(move |tx| {
                let plan = store::plan_by_price(tx, &price)?
                    .ok_or_else(|| EventError::Unusable(format!("no plan sells Stripe price {price}")))?;
                let (before, after) = store::upsert_subscription(tx, &user_id, &plan.view.id, &sub, now)?;
                let Some(kind) = change_kind(before.as_ref(), &after) else {
                    return Ok(());
                };
                store::record_change(
                    tx,
                    &store::Change {
                        user_id: &user_id,
                        stripe_subscription_id: Some(&sub.id),
                        kind,
                        from_plan_id: before.as_ref().map(|b| &b.plan_id),
                        to_plan_id: Some(&after.plan_id),
                        status: Some(after.status),
                        details: json!({ "source": "webhook" }),
                    },
                    now,
                )?;
                let event = Event::new("billing.subscription_changed")
                    .target("user", &user_id)
                    .details(json!({ "subscription": sub.id, "change": kind.as_str(), "status": after.status, "plan": after.plan_id }));
                audit::record(tx, now, &sweeper_actor(), event)?;
                Ok::<_, EventError>(())
            })
            .await?;
        Ok(subscription)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: SubscriptionStatus, plan: &str, cancel: bool, start: i64) -> SubscriptionRow {
        SubscriptionRow {
            id: "s".into(),
            user_id: "u".into(),
            plan_id: plan.into(),
            stripe_subscription_id: None,
            stripe_customer_id: None,
            status,
            current_period_start: Some(start),
            current_period_end: None,
            cancel_at_period_end: cancel,
            canceled_at: None,
            created_at: 0,
        }
    }

    #[test]
    fn each_change_is_named_once() {
        use SubscriptionStatus::*;
        let base = row(Active, "pro", false, 1);
        assert_eq!(change_kind(None, &base), Some(ChangeKind::Started));
        assert_eq!(change_kind(Some(&base), &base), None);
        let cases = [
            (row(Active, "max", false, 1), ChangeKind::PlanChanged),
            (row(Active, "pro", true, 1), ChangeKind::CancelScheduled),
            (row(Canceled, "pro", false, 1), ChangeKind::Canceled),
            (row(PastDue, "pro", false, 1), ChangeKind::StatusChanged),
            (row(Active, "pro", false, 2), ChangeKind::Renewed),
        ];
        for (after, kind) in cases {
            assert_eq!(change_kind(Some(&base), &after), Some(kind));
        }
        let canceling = row(Active, "pro", true, 1);
        assert_eq!(
            change_kind(Some(&canceling), &base),
            Some(ChangeKind::Resumed)
        );
    }
}
