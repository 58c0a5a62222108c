//! `charge.refunded`: the refunded share of a purchase's or an invoice's tokens is clawed back, once per cumulative amount.

use serde_json::json;

use super::errors::sweeper_actor;
use super::{BillingEvents, EventError};
use crate::billing::store;
use crate::billing::stripe::{Charge, Stripe};
use crate::platform::audit::{self, Event};
use crate::tokens::ledger;
use crate::webhooks::Handled;

/// The tokens to take back of a lot of `lot_amount` when `refunded` of `paid` came back,
/// rounded down: a customer is never charged a token they paid for.
fn clawback_target(lot_amount: i64, refunded: i64, paid: i64) -> i64 {
    i64::try_from(i128::from(lot_amount) * i128::from(refunded) / i128::from(paid))
        .unwrap_or(lot_amount)
}

/// What a charge paid and what of it came back (at most what it paid).
fn refund_of(charge: &Charge) -> Option<(i64, i64)> {
    let paid = charge.amount_captured.unwrap_or(charge.amount);
    if paid <= 0 || charge.amount_refunded <= 0 {
        return None;
    }
    Some((paid, charge.amount_refunded.min(paid)))
}

impl BillingEvents {
    /// Claws back the refunded share of a purchase's tokens, once per cumulative amount.
    pub(super) async fn charge_refunded(
        &self,
        stripe: &Stripe,
        id: &str,
    ) -> Result<Handled, EventError> {
        let charge = stripe.get_charge(id).await?;
        let Some((paid, refunded)) = refund_of(&charge) else {
            return Ok(Handled::Processed);
        };
        self.grant_before_clawback(stripe, &charge).await?;
        let payment = charge
            .payment_intent
            .clone()
            .unwrap_or_else(|| charge.id.clone());
        let now = self.clock.now_ms();
        let found = self
            .db
            .write(move |tx| {
                // The lot this charge minted: a pack purchase (by payment) or an invoice.
                let Some(lot) = store::minted_lot(tx, &payment, charge.invoice.as_deref())? else {
                    return Ok(false);
                };
                let target = clawback_target(lot.amount, refunded, paid);
                let reference = format!("refund:{}", charge.id);
                let clawed = ledger::claw_back(tx, &lot.user_id, Some(lot.id), &reference, target, "refund", now)?;
                if lot.is_purchase() && refunded >= paid {
                    store::refund_pack(tx, &payment, &lot.user_id)?;
                }
                if clawed.taken > 0 || clawed.shortfall > 0 {
                    let event = Event::new("billing.tokens_clawed_back").target("user", &lot.user_id).details(json!({
                        "charge": charge.id, "refunded_cents": refunded, "taken": clawed.taken, "shortfall": clawed.shortfall
                    }));
                    audit::record(tx, now, &sweeper_actor(), event)?;
                }
                Ok::<_, EventError>(true)
            })
            .await?;
        Ok(if found {
            Handled::Processed
        } else {
            Handled::Ignored
        })
    }

    /// A refund may be processed before the event of the payment it refunds (both are
    /// retried and reordered). Make that grant now, exactly as its own event would (it
    /// is keyed the same way, so that event later finds it done); otherwise the grant
    /// would come after the clawback and the refunded tokens would stay.
    async fn grant_before_clawback(
        &self,
        stripe: &Stripe,
        charge: &Charge,
    ) -> Result<(), EventError> {
        let payment = charge
            .payment_intent
            .clone()
            .unwrap_or_else(|| charge.id.clone());
        let invoice = charge.invoice.clone();
        let minted = self
            .db
            .read(move |c| Ok::<_, EventError>(store::minted_lot(c, &payment, invoice.as_deref())?))
            .await?;
        if minted.is_some() {
            return Ok(());
        }
        if let Some(invoice) = &charge.invoice {
            self.invoice_paid(stripe, invoice).await?;
        } else if let Some(intent) = &charge.payment_intent {
            self.payment_succeeded(stripe, intent).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clawback_is_the_refunded_share_rounded_down() {
        assert_eq!(clawback_target(1000, 500, 1000), 500);
        assert_eq!(clawback_target(100, 1, 3), 33);
        assert_eq!(clawback_target(100, 3, 3), 100);
    }

    #[test]
    fn nothing_refunded_is_no_refund() {
        let charge = |amount: i64, refunded: i64| -> Charge {
            serde_json::from_value(
                json!({ "id": "ch_1", "amount": amount, "amount_refunded": refunded }),
            )
            .unwrap()
        };
        assert_eq!(refund_of(&charge(1000, 0)), None);
        assert_eq!(refund_of(&charge(0, 10)), None);
        assert_eq!(refund_of(&charge(1000, 2000)), Some((1000, 1000)));
    }
}
