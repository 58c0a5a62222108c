//! Repairing what webhooks that never came would have done, for one customer (`audiostudio stripe reconcile`).

use super::BillingEvents;
use crate::billing::stripe::Stripe;
use crate::webhooks::HandlerError;

/// What `reconcile_customer` looked at.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub subscriptions: usize,
    pub paid_invoices: usize,
}

impl BillingEvents {
    /// Repairs what webhooks that never came would have done for one customer: brings
    /// each of its subscriptions up to Stripe's state and applies its recent paid
    /// invoices (each grants at most once, so running this again changes nothing).
    pub async fn reconcile_customer(
        &self,
        stripe: &Stripe,
        customer: &str,
    ) -> Result<Reconciled, HandlerError> {
        let mut report = Reconciled::default();
        let subscriptions = stripe
            .list_subscriptions(customer)
            .await
            .map_err(super::stripe_failure)?;
        for subscription in &subscriptions.data {
            self.sync_subscription(stripe, &subscription.id).await?;
            report.subscriptions += 1;
        }
        let invoices = stripe
            .list_invoices(customer, 24)
            .await
            .map_err(super::stripe_failure)?;
        for invoice in invoices.data.iter().filter(|i| i.subscription.is_some()) {
            if invoice.is_paid() {
                self.invoice_paid(stripe, &invoice.id).await?;
                report.paid_invoices += 1;
            }
        }
        Ok(report)
    }
}
