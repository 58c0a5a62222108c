//! `checkout.session.*` and `payment_intent.succeeded`: a finished Checkout starts a subscription or grants a paid pack, once.

use serde_json::json;

use super::errors::sweeper_actor;
use super::{BillingEvents, EventError};
use crate::billing::store;
use crate::billing::stripe::{self, CheckoutMode, Stripe};
use crate::platform::audit::{self, Event};
use crate::platform::ids::{PackId, UserId};
use crate::tokens::ledger::{self, Grant, Granted, Source};
use crate::webhooks::Handled;

/// A paid pack to grant: to whom, which, keyed by which payment, bought in which session.
struct PackPayment {
    user_id: UserId,
    pack_id: PackId,
    payment: String,
    session: Option<String>,
}

impl BillingEvents {
    pub(super) async fn checkout_completed(
        &self,
        stripe: &Stripe,
        id: &str,
    ) -> Result<Handled, EventError> {
        let session = stripe.get_checkout_session(id).await?;
        let now = self.clock.now_ms();
        let record = session.clone();
        self.db
            .write(move |tx| Ok::<_, EventError>(store::update_checkout(tx, &record, now)?))
            .await?;
        if !session.is_paid() {
            // An asynchronous payment (e.g. a bank debit) is not through yet; its
            // `checkout.session.async_payment_succeeded` will come.
            return Ok(Handled::Processed);
        }
        match CheckoutMode::from_stripe(session.mode.as_deref()) {
            Some(CheckoutMode::Subscription) => {
                if let Some(subscription) = &session.subscription {
                    self.sync_subscription(stripe, subscription).await?;
                }
                Ok(Handled::Processed)
            }
            Some(CheckoutMode::Payment) => self.pack_session_paid(&session).await,
            None => Ok(Handled::Ignored),
        }
    }

    async fn pack_session_paid(
        &self,
        session: &stripe::CheckoutSession,
    ) -> Result<Handled, EventError> {
        let user = session
            .metadata
            .get("user_id")
            .or(session.client_reference_id.as_ref());
        let user_id = self
            .user_of_customer(session.customer.as_deref(), user.map(String::as_str))
            .await?;
        let pack_id = session.metadata.get("pack_id").ok_or_else(|| {
            EventError::Unusable(format!("payment session {} has no pack_id", session.id))
        })?;
        let payment = session
            .payment_intent
            .clone()
            .unwrap_or_else(|| session.id.clone());
        self.grant_pack(PackPayment {
            user_id,
            pack_id: pack_id.as_str().into(),
            payment,
            session: Some(session.id.clone()),
        })
        .await
    }

    /// Pack purchases whose payment intent carries our metadata (the Checkout event
    /// usually comes first; both grant under the same payment id, so only once).
    pub(super) async fn payment_succeeded(
        &self,
        stripe: &Stripe,
        id: &str,
    ) -> Result<Handled, EventError> {
        let intent = stripe.get_payment_intent(id).await?;
        let (Some(user), Some(pack)) = (
            intent.metadata.get("user_id"),
            intent.metadata.get("pack_id"),
        ) else {
            return Ok(Handled::Ignored);
        };
        if !intent.succeeded() {
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
            .await?;
        self.grant_pack(PackPayment {
            user_id,
            pack_id: pack.as_str().into(),
            payment: intent.id.clone(),
            session: sessions.data.first().map(|s| s.id.clone()),
        })
        .await
    }

    /// Grants a paid pack once, keyed by its payment, never expiring.
    async fn grant_pack(&self, paid: PackPayment) -> Result<Handled, EventError> {
        let now = self.clock.now_ms();
        self.db
            .write(move |tx| {
                let PackPayment { user_id, pack_id, payment, session } = &paid;
                // This payment minted its lot already (its other event came first): done,
                // whatever the pack's tokens are today.
                if let Some(owner) = store::purchase_grantee(tx, payment)? {
                    if &owner != user_id {
                        return Err(EventError::Unusable(format!("payment {payment} already granted tokens to another user")));
                    }
                    store::complete_pack(tx, session.as_deref(), payment, now)?;
                    return Ok(());
                }
                // The tokens promised when the checkout started, or the pack's tokens today.
                let tokens = match store::promised_tokens(tx, user_id, session.as_deref(), payment)? {
                    Some(t) => t,
                    None => {
                        store::pack(tx, pack_id)?
                            .ok_or_else(|| EventError::Unusable(format!("no token pack {pack_id}")))?
                            .tokens
                    }
                };
                let granted = ledger::grant(
                    tx,
                    &Grant {
                        user_id,
                        source: Source::Purchase,
                        source_ref: payment,
                        amount: tokens,
                        expires_at: None,
                        description: Some("token pack"),
                    },
                    now,
                )?;
                store::complete_pack(tx, session.as_deref(), payment, now)?;
                if let Granted::New { lot_id, .. } = granted {
                    let event = Event::new("billing.tokens_granted")
                        .target("user", user_id)
                        .details(json!({ "source": "purchase", "pack": pack_id, "payment": payment, "tokens": tokens, "lot": lot_id }));
                    audit::record(tx, now, &sweeper_actor(), event)?;
                }
                Ok::<_, EventError>(())
            })
            .await?;
        Ok(Handled::Processed)
    }
}
