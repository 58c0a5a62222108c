//! What Stripe's webhook events mean for us: subscription state and tokens from money.
//!
//! Every handler fetches the current object from Stripe instead of trusting the event's
//! payload, so late, repeated and reordered deliveries converge on the same state, and
//! every grant or clawback is keyed by a Stripe object id, so it happens at most once.

mod checkout;
mod errors;
mod invoices;
mod payment_failures;
mod reconcile;
mod refunds;
mod subscription_sync;

use std::sync::Arc;

use tokio::sync::Notify;

use super::store;
use super::stripe::Stripe;
use crate::platform::clock::{Millis, SharedClock};
use crate::platform::config::Settings;
use crate::platform::db::Db;
use crate::platform::ids::UserId;
use crate::webhooks::{BoxFuture, EventHandler, Handled, HandlerError, StoredEvent};
pub use errors::EventError;
use errors::stripe_failure;
pub use reconcile::Reconciled;

/// Subscription tokens stay usable this long after their period ends, so a renewal that
/// is a little late never leaves a subscriber without tokens.
pub const GRANT_GRACE_MS: Millis = 3 * 24 * 3600 * 1000;

/// The event handler billing registers with the webhook worker.
pub struct BillingEvents {
    db: Db,
    clock: SharedClock,
    settings: Settings,
    mail_wakeup: Arc<Notify>,
}

impl BillingEvents {
    pub fn new(app: &crate::state::App) -> BillingEvents {
        BillingEvents::from_parts(
            app.db.clone(),
            app.clock.clone(),
            app.settings.clone(),
            app.mail_wakeup.clone(),
        )
    }

    /// For the CLI, which has a database but no running server.
    pub fn from_parts(
        db: Db,
        clock: SharedClock,
        settings: Settings,
        mail_wakeup: Arc<Notify>,
    ) -> BillingEvents {
        BillingEvents {
            db,
            clock,
            settings,
            mail_wakeup,
        }
    }
}

impl EventHandler for BillingEvents {
    fn handle<'a>(
        &'a self,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
        Box::pin(self.dispatch(event))
    }
}

/// The event types billing acts on, by what they are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    CheckoutCompleted,
    SubscriptionChanged,
    InvoicePaid,
    InvoiceFailed,
    PaymentSucceeded,
    PaymentFailed,
    ChargeRefunded,
}

impl Family {
    /// The family of a Stripe event type; `None` for the types billing ignores.
    fn of(event_type: &str) -> Option<Family> {
        Some(match event_type {
            "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
                Family::CheckoutCompleted
            }
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => Family::SubscriptionChanged,
            "invoice.paid" | "invoice.payment_succeeded" => Family::InvoicePaid,
            "invoice.payment_failed" | "invoice.payment_action_required" => Family::InvoiceFailed,
            "payment_intent.succeeded" => Family::PaymentSucceeded,
            "payment_intent.payment_failed" => Family::PaymentFailed,
            "charge.refunded" => Family::ChargeRefunded,
            _ => return None,
        })
    }
}

impl BillingEvents {
    async fn dispatch(&self, event: &StoredEvent) -> Result<Handled, HandlerError> {
        let kind = event.event_type.as_str();
        let Some(family) = Family::of(kind) else {
            return Ok(Handled::Ignored);
        };
        let object = event.object_id.clone().ok_or_else(|| {
            HandlerError::Permanent(anyhow::anyhow!("the event has no data.object.id"))
        })?;
        let stripe = Stripe::from_settings(&self.settings).map_err(stripe_failure)?;
        let outcome = match family {
            Family::CheckoutCompleted => self.checkout_completed(&stripe, &object).await,
            Family::SubscriptionChanged => self
                .sync_subscription(&stripe, &object)
                .await
                .map(|_| Handled::Processed),
            Family::InvoicePaid => self.invoice_paid(&stripe, &object).await,
            Family::InvoiceFailed => self.invoice_failed(&stripe, &object, kind).await,
            Family::PaymentSucceeded => self.payment_succeeded(&stripe, &object).await,
            Family::PaymentFailed => self.payment_failed(&stripe, &object).await,
            Family::ChargeRefunded => self.charge_refunded(&stripe, &object).await,
        };
        Ok(outcome?)
    }
}

impl BillingEvents {
    /// Whose customer this is: our record, or the user id we put in its metadata.
    async fn user_of_customer(
        &self,
        customer: Option<&str>,
        metadata_user: Option<&str>,
    ) -> Result<UserId, EventError> {
        let (customer, metadata_user) = (
            customer.map(str::to_owned),
            metadata_user.map(str::to_owned),
        );
        let user = self
            .db
            .read(move |c| {
                if let Some(customer) = &customer
                    && let Some(user) = store::user_by_customer(c, customer)?
                {
                    return Ok::<_, EventError>(Some(user));
                }
                match &metadata_user {
                    Some(id) => Ok(store::user_exists(c, id)?),
                    None => Ok(None),
                }
            })
            .await?;
        user.ok_or_else(|| EventError::Unusable("no user for this Stripe customer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_fall_into_families() {
        assert_eq!(Family::of("invoice.paid"), Some(Family::InvoicePaid));
        assert_eq!(
            Family::of("invoice.payment_action_required"),
            Some(Family::InvoiceFailed)
        );
        assert_eq!(
            Family::of("customer.subscription.deleted"),
            Some(Family::SubscriptionChanged)
        );
        assert_eq!(Family::of("customer.created"), None);
    }
}
