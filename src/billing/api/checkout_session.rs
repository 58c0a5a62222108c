//! Opening a Stripe Checkout Session (for a subscription or a pack) and the Stripe customer it needs.

use serde_json::json;

use crate::billing::redirects::with_session_placeholder;
use crate::billing::store;
use crate::billing::stripe::{self, Stripe};
use crate::http::error::{ApiError, ApiResult};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::ids::UserId;
use crate::state::App;

/// What a new Checkout Session sells, and to whom.
pub(crate) struct CheckoutOrder<'a> {
    pub mode: stripe::CheckoutMode,
    pub user_id: &'a UserId,
    pub actor: &'a Actor,
    pub price: &'a str,
    pub metadata: &'a [(&'a str, &'a str)],
    pub success_url: Option<&'a str>,
    pub cancel_url: Option<&'a str>,
    /// Our name for the operation and the request, for Stripe's Idempotency-Key.
    pub operation: &'a str,
    pub reference: &'a str,
}

/// Creates (or, on a retry, gets back) the customer and a Checkout Session for `order`;
/// returns the customer id, the session and its URL. No database transaction is open.
pub(crate) async fn open_checkout(
    app: &App,
    stripe: &Stripe,
    order: &CheckoutOrder<'_>,
) -> ApiResult<(String, stripe::CheckoutSession, String)> {
    let customer = ensure_customer(app, stripe, order.user_id, order.actor).await?;
    let success_url = with_session_placeholder(
        order
            .success_url
            .unwrap_or(&app.settings.billing_success_url),
    );
    let cancel_url = order.cancel_url.unwrap_or(&app.settings.billing_cancel_url);
    let session = stripe
        .create_checkout_session(
            &stripe::NewCheckoutSession {
                mode: order.mode,
                customer: &customer,
                price: order.price,
                client_reference_id: order.user_id.as_str(),
                success_url: &success_url,
                cancel_url,
                metadata: order.metadata,
            },
            &stripe::idempotency_key(&[order.operation, order.user_id.as_str(), order.reference]),
        )
        .await?;
    let url = session.url.clone().ok_or_else(|| {
        ApiError::BadGateway("Stripe created a Checkout Session without a URL".into())
    })?;
    Ok((customer, session, url))
}

/// The user's Stripe customer, created once (its metadata carries our user id) and stored
/// on the user. Concurrent first calls share one customer: the Idempotency-Key is the user's.
pub async fn ensure_customer(
    app: &App,
    stripe: &Stripe,
    user_id: &UserId,
    actor: &Actor,
) -> ApiResult<String> {
    let owner = user_id.clone();
    let (email, existing) = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::customer_of(c, &owner)?))
        .await?
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    if let Some(customer) = existing {
        return Ok(customer);
    }
    let customer = stripe
        .create_customer(
            &email,
            user_id.as_str(),
            &stripe::idempotency_key(&["customer", user_id.as_str()]),
        )
        .await?;
    let (owner, actor, now) = (user_id.clone(), actor.clone(), app.clock.now_ms());
    app.db
        .write(move |tx| {
            let (stored, new) = store::set_customer(tx, &owner, &customer.id, now)?;
            if new {
                audit::record(
                    tx,
                    now,
                    &actor,
                    Event::new("billing.customer_created")
                        .target("user", &owner)
                        .details(json!({ "stripe_customer_id": customer.id })),
                )?;
            }
            Ok::<_, ApiError>(stored)
        })
        .await
}
