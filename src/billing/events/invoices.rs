//! `invoice.paid`: a paid subscription invoice grants the plan's monthly tokens for its period, once; an upgrade grants the difference.

use rusqlite::Transaction;
use serde_json::json;

use super::errors::sweeper_actor;
use super::{BillingEvents, EventError, GRANT_GRACE_MS};
use crate::billing::store;
use crate::billing::stripe::{Invoice, InvoiceLine, Stripe, Subscription};
use crate::platform::audit::{self, Event};
use crate::platform::clock::Millis;
use crate::platform::ids::UserId;
use crate::tokens::ledger::{self, Grant, Granted, Source};
use crate::webhooks::Handled;

/// What a paid invoice pays for, read from its lines: the prices whose monthly tokens it
/// grants. Which tokens those are is the catalogue's to say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InvoicePrices {
    /// The end of the period paid for (unix seconds): the grant lasts until then.
    period_end: Option<i64>,
    /// The price of the plan paid for.
    new_price: Option<String>,
    /// On a mid-period plan change's invoice, the plan left: only the difference is granted.
    old_price: Option<String>,
    /// An upgrade billed on this renewal invoice as a pair of proration lines (the old
    /// price credited, the new charged): `(old, new, its period's end)`.
    carried_upgrade: Option<(String, String, Option<i64>)>,
}

fn line_price(line: &InvoiceLine) -> Option<String> {
    line.price_id().map(str::to_owned)
}

/// The prorated credit of the plan left (a negative proration line).
fn credited_price(lines: &[InvoiceLine]) -> Option<String> {
    lines
        .iter()
        .filter(|l| l.proration && l.amount < 0)
        .find_map(line_price)
}

fn invoice_prices(invoice: &Invoice, subscription: &Subscription) -> InvoicePrices {
    let lines = invoice
        .lines
        .as_ref()
        .map(|l| l.data.as_slice())
        .unwrap_or_default();
    // The period the invoice pays for: its subscription line, else the subscription's.
    let period_end = lines
        .iter()
        .filter(|l| !l.proration)
        .find_map(|l| l.period.end)
        .or(subscription.period().1)
        .or(invoice.period_end);
    let new_price = lines
        .iter()
        .filter(|l| l.amount > 0)
        .find_map(line_price)
        .or(subscription.price_id().map(str::to_owned));
    if invoice.is_plan_change() {
        return InvoicePrices {
            period_end,
            new_price,
            old_price: credited_price(lines),
            carried_upgrade: None,
        };
    }
    // With the default `create_prorations`, an upgrade is billed on the next renewal
    // invoice, as a pair of proration lines beside the new period's line: that pair
    // earns the difference too, separately.
    let charged = lines
        .iter()
        .filter(|l| l.proration && l.amount > 0)
        .find_map(|l| Some((line_price(l)?, l.period.end)));
    InvoicePrices {
        period_end,
        new_price,
        old_price: None,
        carried_upgrade: credited_price(lines)
            .zip(charged)
            .map(|(old, (new, end))| (old, new, end)),
    }
}

/// When tokens granted for a period ending at `period_end` (unix seconds) expire.
fn grant_expiry(period_end: Option<i64>) -> Option<Millis> {
    period_end.map(|end| end.saturating_mul(1000).saturating_add(GRANT_GRACE_MS))
}

/// The monthly tokens of the plan sold at `price` (0 when none sells it).
fn monthly_tokens(tx: &Transaction<'_>, price: &str) -> Result<i64, EventError> {
    Ok(store::plan_by_price(tx, price)?.map_or(0, |p| p.view.monthly_tokens))
}

/// One subscription grant: the tokens, keyed by `reference`, audited with `details`.
struct SubscriptionGrant<'a> {
    user_id: &'a UserId,
    reference: &'a str,
    tokens: i64,
    period_end: Option<i64>,
    description: &'static str,
    details: serde_json::Value,
}

fn grant(tx: &Transaction<'_>, g: SubscriptionGrant<'_>, now: Millis) -> Result<(), EventError> {
    let granted = ledger::grant(
        tx,
        &Grant {
            user_id: g.user_id,
            source: Source::Subscription,
            source_ref: g.reference,
            amount: g.tokens,
            expires_at: grant_expiry(g.period_end),
            description: Some(g.description),
        },
        now,
    )?;
    if let Granted::New { lot_id, .. } = granted {
        let mut details = g.details;
        details["tokens"] = json!(g.tokens);
        details["lot"] = json!(lot_id);
        let event = Event::new("billing.tokens_granted")
            .target("user", g.user_id)
            .details(details);
        audit::record(tx, now, &sweeper_actor(), event)?;
    }
    Ok(())
}

/// Grants the difference between two plans for the rest of a period, once per invoice.
fn grant_upgrade(
    tx: &Transaction<'_>,
    user_id: &UserId,
    invoice_id: &str,
    (old_price, new_price, period_end): &(String, String, Option<i64>),
    now: Millis,
) -> Result<(), EventError> {
    let old = monthly_tokens(tx, old_price)?;
    let new = store::plan_by_price(tx, new_price)?
        .ok_or_else(|| EventError::Unusable(format!("no plan sells Stripe price {new_price}")))?;
    let tokens = new.view.monthly_tokens - old;
    if tokens <= 0 {
        return Ok(());
    }
    let reference = format!("{invoice_id}:proration");
    let details = json!({ "source": "subscription", "invoice": invoice_id, "plan": new.view.id, "upgrade": true });
    grant(
        tx,
        SubscriptionGrant {
            user_id,
            reference: &reference,
            tokens,
            period_end: *period_end,
            description: "plan upgrade",
            details,
        },
        now,
    )
}

/// Grants what the invoice pays for: the plan's tokens, less the old plan's on a plan change.
fn grant_invoice(
    tx: &Transaction<'_>,
    user_id: &UserId,
    invoice_id: &str,
    prices: &InvoicePrices,
    now: Millis,
) -> Result<(), EventError> {
    if let Some(upgrade) = &prices.carried_upgrade {
        grant_upgrade(tx, user_id, invoice_id, upgrade, now)?;
    }
    let price = prices
        .new_price
        .as_deref()
        .ok_or_else(|| EventError::Unusable("the invoice names no price".into()))?;
    let plan = store::plan_by_price(tx, price)?
        .ok_or_else(|| EventError::Unusable(format!("no plan sells Stripe price {price}")))?;
    let previous = match &prices.old_price {
        Some(p) => monthly_tokens(tx, p)?,
        None => 0,
    };
    let tokens = plan.view.monthly_tokens - previous;
    if tokens <= 0 {
        return Ok(());
    }
    let details = json!({ "source": "subscription", "invoice": invoice_id, "plan": plan.view.id });
    grant(
        tx,
        SubscriptionGrant {
            user_id,
            reference: invoice_id,
            tokens,
            period_end: prices.period_end,
            description: if previous > 0 {
                "plan upgrade"
            } else {
                "monthly allowance"
            },
            details,
        },
        now,
    )
}

impl BillingEvents {
    /// A paid subscription invoice grants the plan's monthly tokens for its period, once;
    /// an upgrade's prorated invoice grants the difference between the plans.
    pub(crate) async fn invoice_paid(
        &self,
        stripe: &Stripe,
        id: &str,
    ) -> Result<Handled, EventError> {
        let invoice = stripe.get_invoice(id).await?;
        let Some(subscription_id) = invoice.subscription.clone() else {
            return Ok(Handled::Ignored);
        };
        if !invoice.is_paid() {
            return Ok(Handled::Processed);
        }
        let subscription = self.sync_subscription(stripe, &subscription_id).await?;
        let user_id = self
            .user_of_customer(
                subscription.customer.as_deref(),
                subscription.metadata.get("user_id").map(String::as_str),
            )
            .await?;
        let prices = invoice_prices(&invoice, &subscription);
        let now = self.clock.now_ms();
        self.db
            .write(move |tx| grant_invoice(tx, &user_id, &invoice.id, &prices, now))
            .await?;
        Ok(Handled::Processed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(reason: &str, lines: serde_json::Value) -> Invoice {
        serde_json::from_value(json!({
            "id": "in_1", "status": "paid", "billing_reason": reason, "period_end": 50,
            "lines": { "data": lines }
        }))
        .unwrap()
    }

    fn subscription() -> Subscription {
        serde_json::from_value(json!({
            "id": "sub_1", "status": "active", "current_period_end": 99,
            "items": { "data": [{ "id": "si_1", "price": { "id": "price_sub" } }] }
        }))
        .unwrap()
    }

    #[test]
    fn a_renewal_grants_its_plan_for_its_line_period() {
        let prices = invoice_prices(
            &invoice(
                "subscription_cycle",
                json!([{ "amount": 1000, "price": { "id": "price_pro" }, "period": { "end": 77 } }]),
            ),
            &subscription(),
        );
        assert_eq!(prices.new_price.as_deref(), Some("price_pro"));
        assert_eq!(prices.period_end, Some(77));
        assert_eq!(prices.old_price, None);
        assert_eq!(prices.carried_upgrade, None);
    }

    #[test]
    fn a_plan_change_invoice_grants_the_difference() {
        let prices = invoice_prices(
            &invoice(
                "subscription_update",
                json!([
                    { "amount": -500, "proration": true, "plan": { "id": "price_pro" } },
                    { "amount": 900, "proration": true, "price": { "id": "price_max" } },
                ]),
            ),
            &subscription(),
        );
        assert_eq!(prices.new_price.as_deref(), Some("price_max"));
        assert_eq!(prices.old_price.as_deref(), Some("price_pro"));
        assert_eq!(prices.period_end, Some(99));
        assert_eq!(prices.carried_upgrade, None);
    }

    #[test]
    fn a_renewal_carrying_an_upgrade_grants_both() {
        let prices = invoice_prices(
            &invoice(
                "subscription_cycle",
                json!([
                    { "amount": -500, "proration": true, "price": { "id": "price_pro" } },
                    { "amount": 900, "proration": true, "price": { "id": "price_max" }, "period": { "end": 60 } },
                    { "amount": 2000, "price": { "id": "price_max" }, "period": { "end": 120 } },
                ]),
            ),
            &subscription(),
        );
        assert_eq!(
            prices.carried_upgrade,
            Some(("price_pro".into(), "price_max".into(), Some(60)))
        );
        assert_eq!(prices.period_end, Some(120));
        assert_eq!(grant_expiry(Some(1)), Some(1000 + GRANT_GRACE_MS));
    }
}
