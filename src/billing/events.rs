//! What Stripe's webhook events mean for us: subscription state and tokens from money.
//!
//! Every handler fetches the current object from Stripe instead of trusting the event's
//! payload, so late, repeated and reordered deliveries converge on the same state, and
//! every grant or clawback is keyed by a Stripe object id, so it happens at most once.

use std::sync::Arc;

use rusqlite::OptionalExtension;
use serde_json::json;
use tokio::sync::Notify;

use super::store;
use super::stripe::{self, Stripe, StripeError};
use crate::http::error::ApiError;
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::{Millis, SharedClock};
use crate::platform::config::Settings;
use crate::platform::db::Db;
use crate::platform::mail;
use crate::tokens::ledger::{self, Grant, Granted, Source};
use crate::webhooks::{BoxFuture, EventHandler, Handled, HandlerError, StoredEvent};

/// Subscription tokens stay usable this long after their period ends, so a renewal that
/// is a little late never leaves a subscriber without tokens.
pub const GRANT_GRACE_MS: Millis = 3 * 24 * 3600 * 1000;

/// Grants the difference between two plans for the rest of a period, once per invoice.
fn grant_upgrade(
    tx: &rusqlite::Transaction<'_>,
    user_id: &str,
    invoice_id: &str,
    old_price: &str,
    new_price: &str,
    period_end: Option<i64>,
    now: Millis,
) -> Result<(), ApiError> {
    let old = store::plan_by_price(tx, old_price)?.map_or(0, |p| p.view.monthly_tokens);
    let new = store::plan_by_price(tx, new_price)?
        .ok_or_else(|| ApiError::Conflict(format!("no plan sells Stripe price {new_price}")))?;
    let tokens = new.view.monthly_tokens - old;
    if tokens <= 0 {
        return Ok(());
    }
    let reference = format!("{invoice_id}:proration");
    let granted = ledger::grant(
        tx,
        &Grant {
            user_id,
            source: Source::Subscription,
            source_ref: &reference,
            amount: tokens,
            expires_at: period_end
                .map(|end| end.saturating_mul(1000).saturating_add(GRANT_GRACE_MS)),
            description: Some("plan upgrade"),
        },
        now,
    )?;
    if let Granted::New { lot_id, .. } = granted {
        let event = Event::new("billing.tokens_granted").target("user", user_id).details(json!({
            "source": "subscription", "invoice": invoice_id, "plan": new.view.id, "tokens": tokens, "lot": lot_id, "upgrade": true
        }));
        audit::record(tx, now, &sweeper_actor(), event)?;
    }
    Ok(())
}

/// What `reconcile_customer` looked at.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub subscriptions: usize,
    pub paid_invoices: usize,
}

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
            .map_err(stripe_failure)?;
        for subscription in &subscriptions.data {
            self.sync_subscription(stripe, &subscription.id).await?;
            report.subscriptions += 1;
        }
        let invoices = stripe
            .list_invoices(customer, 24)
            .await
            .map_err(stripe_failure)?;
        for invoice in invoices.data.iter().filter(|i| i.subscription.is_some()) {
            let paid = invoice.status.as_deref() == Some("paid") || invoice.paid == Some(true);
            if paid {
                self.invoice_paid(stripe, &invoice.id).await?;
                report.paid_invoices += 1;
            }
        }
        Ok(report)
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

/// Stripe being down is worth retrying; an object that does not exist is not.
fn stripe_failure(e: StripeError) -> HandlerError {
    if e.is_transient() {
        HandlerError::Retry(anyhow::anyhow!("Stripe: {e}"))
    } else {
        HandlerError::Permanent(anyhow::anyhow!("Stripe: {e}"))
    }
}

fn write_failure(e: ApiError) -> HandlerError {
    HandlerError::Retry(anyhow::anyhow!("{e}: {e:?}"))
}

fn sweeper_actor() -> Actor {
    Actor {
        user_agent: Some("stripe-webhook".into()),
        ..Actor::default()
    }
}

impl BillingEvents {
    async fn dispatch(&self, event: &StoredEvent) -> Result<Handled, HandlerError> {
        let kind = event.event_type.as_str();
        let known = matches!(
            kind,
            "checkout.session.completed"
                | "checkout.session.async_payment_succeeded"
                | "customer.subscription.created"
                | "customer.subscription.updated"
                | "customer.subscription.deleted"
                | "invoice.paid"
                | "invoice.payment_succeeded"
                | "invoice.payment_failed"
                | "invoice.payment_action_required"
                | "payment_intent.succeeded"
                | "payment_intent.payment_failed"
                | "charge.refunded"
        );
        if !known {
            return Ok(Handled::Ignored);
        }
        let object = event.object_id.clone().ok_or_else(|| {
            HandlerError::Permanent(anyhow::anyhow!("the event has no data.object.id"))
        })?;
        let stripe = Stripe::from_settings(&self.settings).map_err(stripe_failure)?;
        match kind {
            "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
                self.checkout_completed(&stripe, &object).await
            }
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => self
                .sync_subscription(&stripe, &object)
                .await
                .map(|_| Handled::Processed),
            "invoice.paid" | "invoice.payment_succeeded" => {
                self.invoice_paid(&stripe, &object).await
            }
            "invoice.payment_failed" | "invoice.payment_action_required" => {
                self.invoice_failed(&stripe, &object, kind).await
            }
            "payment_intent.succeeded" => self.payment_succeeded(&stripe, &object).await,
            "payment_intent.payment_failed" => self.payment_failed(&stripe, &object).await,
            "charge.refunded" => self.charge_refunded(&stripe, &object).await,
            _ => Ok(Handled::Ignored),
        }
    }

    /// Whose customer this is: our record, or the user id we put in its metadata.
    async fn user_of_customer(
        &self,
        customer: Option<&str>,
        metadata_user: Option<&str>,
    ) -> Result<String, HandlerError> {
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
                    return Ok::<_, ApiError>(Some(user));
                }
                match &metadata_user {
                    Some(id) => Ok(c
                        .query_row("SELECT id FROM users WHERE id = ?1", [id], |r| {
                            r.get::<_, String>(0)
                        })
                        .ok()),
                    None => Ok(None),
                }
            })
            .await
            .map_err(write_failure)?;
        user.ok_or_else(|| {
            HandlerError::Permanent(anyhow::anyhow!("no user for this Stripe customer"))
        })
    }

    /// Brings our copy of a subscription up to Stripe's current state.
    pub(crate) async fn sync_subscription(
        &self,
        stripe: &Stripe,
        id: &str,
    ) -> Result<stripe::Subscription, HandlerError> {
        let subscription = stripe.get_subscription(id).await.map_err(stripe_failure)?;
        let user_id = self
            .user_of_customer(
                subscription.customer.as_deref(),
                subscription.metadata.get("user_id").map(String::as_str),
            )
            .await?;
        let price = subscription
            .price_id()
            .ok_or_else(|| {
                HandlerError::Permanent(anyhow::anyhow!("subscription {id} has no price"))
            })?
            .to_owned();
        let now = self.clock.now_ms();
        let sub = subscription.clone();
        self.db
            .write(move |tx| {
                let plan = store::plan_by_price(tx, &price)?
                    .ok_or_else(|| ApiError::Conflict(format!("no plan sells Stripe price {price}")))?;
                let (before, after) = store::upsert_subscription(tx, &user_id, &plan.view.id, &sub, now)?;
                let kind = match &before {
                    None => Some("started"),
                    Some(b) if b.plan_id != after.plan_id => Some("plan_changed"),
                    Some(b) if !b.cancel_at_period_end && after.cancel_at_period_end => Some("cancel_scheduled"),
                    Some(b) if b.cancel_at_period_end && !after.cancel_at_period_end => Some("resumed"),
                    Some(b) if b.status != after.status && after.status == "canceled" => Some("canceled"),
                    Some(b) if b.status != after.status => Some("status_changed"),
                    // A new period began: the renewal shows in the history.
                    Some(b) if b.current_period_start.is_some() && after.current_period_start > b.current_period_start => {
                        Some("renewed")
                    }
                    Some(_) => None,
                };
                if let Some(kind) = kind {
                    store::record_change(
                        tx,
                        &store::Change {
                            user_id: &user_id,
                            stripe_subscription_id: Some(&sub.id),
                            kind,
                            from_plan_id: before.as_ref().map(|b| b.plan_id.as_str()),
                            to_plan_id: Some(&after.plan_id),
                            status: Some(&after.status),
                            details: json!({ "source": "webhook" }),
                        },
                        now,
                    )?;
                    let event = Event::new("billing.subscription_changed")
                        .target("user", &user_id)
                        .details(json!({ "subscription": sub.id, "change": kind, "status": after.status, "plan": after.plan_id }));
                    audit::record(tx, now, &sweeper_actor(), event)?;
                }
                Ok::<_, ApiError>(())
            })
            .await
            .map_err(|e| match e {
                ApiError::Conflict(m) => HandlerError::Permanent(anyhow::anyhow!(m)),
                other => write_failure(other),
            })?;
        Ok(subscription)
    }

    async fn checkout_completed(&self, stripe: &Stripe, id: &str) -> Result<Handled, HandlerError> {
        let session = stripe
            .get_checkout_session(id)
            .await
            .map_err(stripe_failure)?;
        let paid = matches!(
            session.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        );
        let now = self.clock.now_ms();
        let record = session.clone();
        self.db
            .write(move |tx| Ok::<_, ApiError>(store::update_checkout(tx, &record, now)?))
            .await
            .map_err(write_failure)?;
        if !paid {
            // An asynchronous payment (e.g. a bank debit) is not through yet; its
            // `checkout.session.async_payment_succeeded` will come.
            return Ok(Handled::Processed);
        }
        match session.mode.as_deref() {
            Some("subscription") => {
                if let Some(subscription) = &session.subscription {
                    self.sync_subscription(stripe, subscription).await?;
                }
                Ok(Handled::Processed)
            }
            Some("payment") => {
                let user = session
                    .metadata
                    .get("user_id")
                    .or(session.client_reference_id.as_ref());
                let user_id = self
                    .user_of_customer(session.customer.as_deref(), user.map(String::as_str))
                    .await?;
                let pack_id = session.metadata.get("pack_id").cloned().ok_or_else(|| {
                    HandlerError::Permanent(anyhow::anyhow!("payment session {id} has no pack_id"))
                })?;
                let reference = session
                    .payment_intent
                    .clone()
                    .unwrap_or_else(|| session.id.clone());
                self.grant_pack(&user_id, &pack_id, &reference, Some(&session.id))
                    .await
            }
            _ => Ok(Handled::Ignored),
        }
    }

    /// Grants a paid pack once, keyed by its payment, never expiring.
    async fn grant_pack(
        &self,
        user_id: &str,
        pack_id: &str,
        payment: &str,
        session: Option<&str>,
    ) -> Result<Handled, HandlerError> {
        let now = self.clock.now_ms();
        let (user_id, pack_id, payment, session) = (
            user_id.to_owned(),
            pack_id.to_owned(),
            payment.to_owned(),
            session.map(str::to_owned),
        );
        self.db
            .write(move |tx| {
                // This payment minted its lot already (its other event came first): done,
                // whatever the pack's tokens are today.
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT user_id FROM token_lots WHERE source = 'purchase' AND source_ref = ?1",
                        [&payment],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(owner) = existing {
                    if owner != user_id {
                        return Err(ApiError::Conflict(format!("payment {payment} already granted tokens to another user")));
                    }
                    complete_pack(tx, session.as_deref(), &payment, now)?;
                    return Ok(());
                }
                // The tokens promised when the checkout started, or the pack's tokens today.
                let promised: Option<i64> = tx
                    .query_row(
                        "SELECT tokens FROM user_token_packs
                         WHERE user_id = ?1 AND (stripe_checkout_session_id = ?2 OR stripe_payment_intent_id = ?3)",
                        rusqlite::params![user_id, session, payment],
                        |r| r.get(0),
                    )
                    .optional()?;
                let tokens = match promised {
                    Some(t) => t,
                    None => {
                        store::pack(tx, &pack_id)?
                            .ok_or_else(|| ApiError::Conflict(format!("no token pack {pack_id}")))?
                            .tokens
                    }
                };
                let granted = ledger::grant(
                    tx,
                    &Grant {
                        user_id: &user_id,
                        source: Source::Purchase,
                        source_ref: &payment,
                        amount: tokens,
                        expires_at: None,
                        description: Some("token pack"),
                    },
                    now,
                )?;
                complete_pack(tx, session.as_deref(), &payment, now)?;
                if let Granted::New { lot_id, .. } = granted {
                    let event = Event::new("billing.tokens_granted")
                        .target("user", &user_id)
                        .details(json!({ "source": "purchase", "pack": pack_id, "payment": payment, "tokens": tokens, "lot": lot_id }));
                    audit::record(tx, now, &sweeper_actor(), event)?;
                }
                Ok::<_, ApiError>(())
            })
            .await
            .map_err(|e| match e {
                // An unknown pack or a payment of someone else: retrying cannot help.
                ApiError::Conflict(m) => HandlerError::Permanent(anyhow::anyhow!(m)),
                other => write_failure(other),
            })?;
        Ok(Handled::Processed)
    }

    /// Pack purchases whose payment intent carries our metadata (the Checkout event
    /// usually comes first; both grant under the same payment id, so only once).
    async fn payment_succeeded(&self, stripe: &Stripe, id: &str) -> Result<Handled, HandlerError> {
        let intent = stripe
            .get_payment_intent(id)
            .await
            .map_err(stripe_failure)?;
        let (Some(user), Some(pack)) = (
            intent.metadata.get("user_id"),
            intent.metadata.get("pack_id"),
        ) else {
            return Ok(Handled::Ignored);
        };
        if intent.status.as_deref() != Some("succeeded") {
            return Ok(Handled::Processed);
        }
        let user_id = self
            .user_of_customer(intent.customer.as_deref(), Some(user))
            .await?;
        // The Checkout Session that took this payment, so the purchase gets the tokens
        // promised when it started even if this event comes before the session's.
        let sessions: stripe::List<stripe::CheckoutSession> = stripe
            .get(
                "v1/checkout/sessions",
                &[("payment_intent", intent.id.as_str()), ("limit", "1")],
            )
            .await
            .map_err(stripe_failure)?;
        let session = sessions.data.first().map(|s| s.id.clone());
        self.grant_pack(&user_id, pack, &intent.id, session.as_deref())
            .await
    }

    async fn payment_failed(&self, stripe: &Stripe, id: &str) -> Result<Handled, HandlerError> {
        let intent = stripe
            .get_payment_intent(id)
            .await
            .map_err(stripe_failure)?;
        if !intent.metadata.contains_key("pack_id") || intent.status.as_deref() == Some("succeeded")
        {
            return Ok(Handled::Ignored);
        }
        tracing::info!(payment_intent = %intent.id, "a token-pack payment failed");
        Ok(Handled::Processed)
    }

    /// A paid subscription invoice grants the plan's monthly tokens for its period, once;
    /// an upgrade's prorated invoice grants the difference between the plans.
    pub(crate) async fn invoice_paid(
        &self,
        stripe: &Stripe,
        id: &str,
    ) -> Result<Handled, HandlerError> {
        let invoice = stripe.get_invoice(id).await.map_err(stripe_failure)?;
        let paid = invoice.status.as_deref() == Some("paid") || invoice.paid == Some(true);
        let Some(subscription_id) = invoice.subscription.clone() else {
            return Ok(Handled::Ignored);
        };
        if !paid {
            return Ok(Handled::Processed);
        }
        let subscription = self.sync_subscription(stripe, &subscription_id).await?;
        let user_id = self
            .user_of_customer(
                subscription.customer.as_deref(),
                subscription.metadata.get("user_id").map(String::as_str),
            )
            .await?;
        let lines = invoice
            .lines
            .as_ref()
            .map(|l| l.data.as_slice())
            .unwrap_or_default();
        let line_price =
            |l: &stripe::InvoiceLine| l.price.as_ref().or(l.plan.as_ref()).map(|p| p.id.clone());
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
        let old_price = if invoice.billing_reason.as_deref() == Some("subscription_update") {
            lines
                .iter()
                .filter(|l| l.proration && l.amount < 0)
                .find_map(line_price)
        } else {
            None
        };
        // With the default `create_prorations`, an upgrade is billed on the next renewal
        // invoice, as a pair of proration lines (the old price credited, the new charged)
        // beside the new period's line: that pair earns the difference too, separately.
        let carried_upgrade = if invoice.billing_reason.as_deref() == Some("subscription_update") {
            None
        } else {
            let credited = lines
                .iter()
                .filter(|l| l.proration && l.amount < 0)
                .find_map(line_price);
            let charged = lines
                .iter()
                .filter(|l| l.proration && l.amount > 0)
                .find_map(|l| Some((line_price(l)?, l.period.end)));
            credited
                .zip(charged)
                .map(|(old, (new, end))| (old, new, end))
        };
        let now = self.clock.now_ms();
        let invoice_id = invoice.id.clone();
        let upgrade_user = user_id.clone();
        let upgrade_invoice = invoice_id.clone();
        self.db
            .write(move |tx| {
                if let Some((old, new, end)) = &carried_upgrade {
                    grant_upgrade(tx, &upgrade_user, &upgrade_invoice, old, new, *end, now)?;
                }
                let price = new_price.ok_or_else(|| ApiError::Conflict("the invoice names no price".into()))?;
                let plan = store::plan_by_price(tx, &price)?
                    .ok_or_else(|| ApiError::Conflict(format!("no plan sells Stripe price {price}")))?;
                let previous = match &old_price {
                    Some(p) => store::plan_by_price(tx, p)?.map_or(0, |p| p.view.monthly_tokens),
                    None => 0,
                };
                let tokens = plan.view.monthly_tokens - previous;
                if tokens <= 0 {
                    return Ok(());
                }
                let expires_at = period_end.map(|end| end.saturating_mul(1000).saturating_add(GRANT_GRACE_MS));
                let granted = ledger::grant(
                    tx,
                    &Grant {
                        user_id: &user_id,
                        source: Source::Subscription,
                        source_ref: &invoice_id,
                        amount: tokens,
                        expires_at,
                        description: Some(if previous > 0 { "plan upgrade" } else { "monthly allowance" }),
                    },
                    now,
                )?;
                if let Granted::New { lot_id, .. } = granted {
                    let event = Event::new("billing.tokens_granted").target("user", &user_id).details(json!({
                        "source": "subscription", "invoice": invoice_id, "plan": plan.view.id, "tokens": tokens, "lot": lot_id
                    }));
                    audit::record(tx, now, &sweeper_actor(), event)?;
                }
                Ok::<_, ApiError>(())
            })
            .await
            .map_err(|e| match e {
                ApiError::Conflict(m) => HandlerError::Permanent(anyhow::anyhow!(m)),
                other => write_failure(other),
            })?;
        Ok(Handled::Processed)
    }

    /// A failed renewal: the subscription is past due (per Stripe) and the user hears of it.
    async fn invoice_failed(
        &self,
        stripe: &Stripe,
        id: &str,
        kind: &str,
    ) -> Result<Handled, HandlerError> {
        let invoice = stripe.get_invoice(id).await.map_err(stripe_failure)?;
        let Some(subscription_id) = invoice.subscription.clone() else {
            return Ok(Handled::Ignored);
        };
        let subscription = self.sync_subscription(stripe, &subscription_id).await?;
        // A late notice about an invoice that has been paid (a retry went through) or
        // voided since: the user has nothing to fix.
        if matches!(invoice.status.as_deref(), Some("paid" | "void")) || invoice.paid == Some(true)
        {
            return Ok(Handled::Processed);
        }
        let user_id = self
            .user_of_customer(
                subscription.customer.as_deref(),
                subscription.metadata.get("user_id").map(String::as_str),
            )
            .await?;
        let now = self.clock.now_ms();
        let (invoice_id, url, kind) = (
            invoice.id.clone(),
            invoice.hosted_invoice_url.clone(),
            kind.to_owned(),
        );
        let base = self.settings.public_base_url.clone();
        let queued = self
            .db
            .write(move |tx| {
                // One email per invoice, however many deliveries, failed retries or
                // requests for action it brings.
                let marker = format!("invoice:{invoice_id}");
                let first = tx.execute(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?1, 'notified', ?2) ON CONFLICT (key) DO NOTHING",
                    rusqlite::params![format!("billing.notice.{marker}"), now],
                )? == 1;
                if first {
                    let to: String = tx.query_row("SELECT email FROM users WHERE id = ?1", [&user_id], |r| r.get(0))?;
                    mail::enqueue(tx, &super::emails::payment_problem(&base, &to, url.as_deref()), now)?;
                    let event = Event::new("billing.payment_failed")
                        .target("user", &user_id)
                        .details(json!({ "invoice": invoice_id, "event": kind }));
                    audit::record(tx, now, &sweeper_actor(), event)?;
                }
                Ok::<_, ApiError>(first)
            })
            .await
            .map_err(write_failure)?;
        if queued {
            self.mail_wakeup.notify_one();
        }
        Ok(Handled::Processed)
    }

    /// Claws back the refunded share of a purchase's tokens, once per cumulative amount.
    async fn charge_refunded(&self, stripe: &Stripe, id: &str) -> Result<Handled, HandlerError> {
        let charge = stripe.get_charge(id).await.map_err(stripe_failure)?;
        let payment = charge
            .payment_intent
            .clone()
            .unwrap_or_else(|| charge.id.clone());
        let paid = charge.amount_captured.unwrap_or(charge.amount);
        if paid <= 0 || charge.amount_refunded <= 0 {
            return Ok(Handled::Processed);
        }
        // A refund may be processed before the event of the payment it refunds (both are
        // retried and reordered). Make that grant now, exactly as its own event would (it
        // is keyed the same way, so that event later finds it done); otherwise the grant
        // would come after the clawback and the refunded tokens would stay.
        let (lookup_payment, lookup_invoice) = (payment.clone(), charge.invoice.clone());
        let minted = self
            .db
            .read(move |c| {
                Ok::<_, ApiError>(minted_lot(c, &lookup_payment, lookup_invoice.as_deref())?)
            })
            .await
            .map_err(write_failure)?;
        if minted.is_none() {
            if let Some(invoice) = &charge.invoice {
                self.invoice_paid(stripe, invoice).await?;
            } else if let Some(intent) = &charge.payment_intent {
                self.payment_succeeded(stripe, intent).await?;
            }
        }
        let now = self.clock.now_ms();
        let (charge_id, refunded, invoice) = (
            charge.id.clone(),
            charge.amount_refunded.min(paid),
            charge.invoice.clone(),
        );
        self.db
            .write(move |tx| {
                // The lot this charge minted: a pack purchase (by payment) or an invoice.
                let Some(lot) = minted_lot(tx, &payment, invoice.as_deref())? else {
                    return Ok(false);
                };
                // Round the share down: a customer is never charged a token they paid for.
                let target = i64::try_from(i128::from(lot.amount) * i128::from(refunded) / i128::from(paid)).unwrap_or(lot.amount);
                let reference = format!("refund:{charge_id}");
                let clawed = ledger::claw_back(tx, &lot.user_id, Some(lot.id), &reference, target, "refund", now)?;
                if lot.source == "purchase" && refunded >= paid {
                    tx.execute(
                        "UPDATE user_token_packs SET status = 'refunded' WHERE stripe_payment_intent_id = ?1 AND user_id = ?2",
                        rusqlite::params![payment, lot.user_id],
                    )?;
                }
                if clawed.taken > 0 || clawed.shortfall > 0 {
                    let event = Event::new("billing.tokens_clawed_back").target("user", &lot.user_id).details(json!({
                        "charge": charge_id, "refunded_cents": refunded, "taken": clawed.taken, "shortfall": clawed.shortfall
                    }));
                    audit::record(tx, now, &sweeper_actor(), event)?;
                }
                Ok::<_, ApiError>(true)
            })
            .await
            .map_err(write_failure)
            .map(|found| if found { Handled::Processed } else { Handled::Ignored })
    }
}

/// A lot some Stripe payment minted.
struct MintedLot {
    id: i64,
    user_id: String,
    amount: i64,
    source: String,
}

/// The lot a charge paid for: a pack purchase (keyed by its payment) or a subscription
/// invoice.
fn minted_lot(
    conn: &rusqlite::Connection,
    payment: &str,
    invoice: Option<&str>,
) -> rusqlite::Result<Option<MintedLot>> {
    conn.query_row(
        "SELECT id, user_id, amount, source FROM token_lots
         WHERE (source = 'purchase' AND source_ref = ?1) OR (source = 'subscription' AND source_ref = ?2)
         ORDER BY id LIMIT 1",
        rusqlite::params![payment, invoice],
        |r| {
            Ok(MintedLot {
                id: r.get(0)?,
                user_id: r.get(1)?,
                amount: r.get(2)?,
                source: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Marks the pending purchase of `payment` (started as Checkout `session`) completed.
fn complete_pack(
    tx: &rusqlite::Transaction<'_>,
    session: Option<&str>,
    payment: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE user_token_packs SET status = 'completed', stripe_payment_intent_id = COALESCE(stripe_payment_intent_id, ?2),
                completed_at = COALESCE(completed_at, ?3)
         WHERE (stripe_checkout_session_id = ?1 OR stripe_payment_intent_id = ?2) AND status = 'pending'",
        rusqlite::params![session, payment, now],
    )?;
    Ok(())
}
