//! `invoice.payment_failed` and `payment_intent.payment_failed`: the subscription follows Stripe (past due, or still incomplete) and the user hears of it, once per invoice.

use serde_json::json;

use super::errors::sweeper_actor;
use super::{BillingEvents, EventError};
use crate::billing::emails;
use crate::billing::store;
use crate::billing::stripe::Stripe;
use crate::platform::audit::{self, Event};
use crate::platform::mail;
use crate::webhooks::Handled;

impl BillingEvents {
    /// A failed renewal: the subscription is past due (per Stripe) and the user hears of it.
    pub(super) async fn invoice_failed(
        &self,
        stripe: &Stripe,
        id: &str,
        kind: &str,
    ) -> Result<Handled, EventError> {
        let invoice = stripe.get_invoice(id).await?;
        let Some(subscription_id) = invoice.subscription.clone() else {
            return Ok(Handled::Ignored);
        };
        let subscription = self.sync_subscription(stripe, &subscription_id).await?;
        // A late notice about an invoice that has been paid (a retry went through) or
        // voided since: the user has nothing to fix.
        if invoice.is_settled() {
            return Ok(Handled::Processed);
        }
        let user_id = self
            .user_of_customer(
                subscription.customer.as_deref(),
                subscription.metadata.get("user_id").map(String::as_str),
            )
            .await?;
        let now = self.clock.now_ms();
        let kind = kind.to_owned();
        let base = self.settings.server.public_base_url.clone();
        // A first payment that failed: the subscription never started (Stripe keeps it
        // `incomplete`, then `incomplete_expired`), so the renewal text would be untrue.
        let never_started = subscription.status.never_started();
        let queued = self
            .db
            .write(move |tx| {
                // One email per invoice, however many deliveries, failed retries or
                // requests for action it brings.
                let first = store::note_payment_notice(tx, &invoice.id, now)?;
                if first {
                    let to = store::email_of(tx, &user_id)?;
                    let url = invoice.hosted_invoice_url.as_deref();
                    let email = if never_started {
                        emails::first_payment_problem(&base, &to, url)
                    } else {
                        emails::payment_problem(&base, &to, url)
                    };
                    mail::enqueue(tx, &email, now)?;
                    let event = Event::new("billing.payment_failed")
                        .target("user", &user_id)
                        .details(json!({ "invoice": invoice.id, "event": kind }));
                    audit::record(tx, now, &sweeper_actor(), event)?;
                }
                Ok::<_, EventError>(first)
            })
            .await?;
        if queued {
            self.mail_wakeup.notify_one();
        }
        Ok(Handled::Processed)
    }

    /// A failed pack payment: nothing to undo (no tokens were granted); noted in the log.
    pub(super) async fn payment_failed(
        &self,
        stripe: &Stripe,
        id: &str,
    ) -> Result<Handled, EventError> {
        let intent = stripe.get_payment_intent(id).await?;
        if !intent.metadata.contains_key("pack_id") || intent.succeeded() {
            return Ok(Handled::Ignored);
        }
        tracing::info!(payment_intent = %intent.id, "a token-pack payment failed");
        Ok(Handled::Processed)
    }
}
