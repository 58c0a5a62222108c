//! Opening a Stripe Checkout Session (for a subscription or a pack) and the Stripe customer it needs.

use rocket::http::Status;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::fields::{catalogue_id, redirect_fields, request_ref};
use crate::billing::redirects::with_session_placeholder;
use crate::billing::store;
use crate::billing::stripe::{self, Stripe};
use crate::http::error::{ApiError, ApiResult};
use crate::http::idempotency::{Idempotent, Stored};
use crate::http::validate::Checks;
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::ids::UserId;
use crate::state::App;

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResponse {
    /// The Checkout Session id (`cs_...`): poll `GET /api/subscriptions/checkout/{id}`.
    pub id: String,
    /// Send the user here to pay.
    pub url: String,
}

/// The catalogue id a checkout sells (`field`), with its optional success and cancel URLs checked.
pub(crate) fn checkout_fields<T: From<String>>(
    app: &App,
    field: &str,
    id: &str,
    success_url: Option<&str>,
    cancel_url: Option<&str>,
) -> ApiResult<T> {
    let mut checks = Checks::default();
    let id = checks.field(field, catalogue_id::<T>(id));
    let (success, cancel) = redirect_fields(app, &mut checks, success_url, cancel_url);
    let (id, ..) = checks.finish((id, success, cancel))?;
    Ok(id)
}

/// Stripe's Idempotency-Key reference for a checkout: the caller's retry reaches the same session.
pub(crate) fn checkout_ref(idem: &Idempotent) -> String {
    request_ref(idem.key(), idem.fingerprint())
}

/// Opens the Checkout Session of `order`, then in one write (replayed for a retry with the
/// same Idempotency-Key) records it with `record` and answers 201 with its id and URL.
pub(crate) async fn sell<F>(
    app: &App,
    stripe: &Stripe,
    idem: Idempotent,
    order: &CheckoutOrder<'_>,
    record: F,
) -> ApiResult<Stored>
where
    F: FnOnce(&rusqlite::Transaction<'_>, &str, &stripe::CheckoutSession, Millis) -> ApiResult<()>
        + Send
        + 'static,
{
    let (customer, session, url) = open_checkout(app, stripe, order).await?;
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                record(tx, &customer, &session, now)?;
                let response = CheckoutResponse {
                    id: session.id.clone(),
                    url,
                };
                Ok(Stored::json(Status::Created, &response))
            })
        })
        .await
}

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
async fn open_checkout(
    app: &App,
    stripe: &Stripe,
    order: &CheckoutOrder<'_>,
) -> ApiResult<(String, stripe::CheckoutSession, String)> {
    let customer = ensure_customer(app, stripe, order.user_id, order.actor).await?;
    let success_url = with_session_placeholder(
        order
            .success_url
            .unwrap_or(&app.settings.billing.billing_success_url),
    );
    let cancel_url = order
        .cancel_url
        .unwrap_or(&app.settings.billing.billing_cancel_url);
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
        .await
        .map_err(|e| not_found_at_stripe(e, order, &customer))?;
    let url = session.url.clone().ok_or_else(|| {
        ApiError::BadGateway("Stripe created a Checkout Session without a URL".into())
    })?;
    Ok((customer, session, url))
}

/// Stripe not finding what a new Checkout Session names (the price of the plan or pack,
/// or the stored customer) is our data out of step with Stripe's, not a missing route:
/// a 409 saying which object Stripe did not find. Other errors pass through.
fn not_found_at_stripe(
    e: stripe::StripeError,
    order: &CheckoutOrder<'_>,
    customer: &str,
) -> ApiError {
    let stripe::StripeError::NotFound(body) = &e else {
        return e.into();
    };
    tracing::warn!(error = %e, price = order.price, customer, "Stripe did not find an object of a new Checkout Session");
    let param = body.param.as_deref().unwrap_or_default();
    let message = body.message.as_deref().unwrap_or_default();
    let what = if param.contains("price") || message.contains("price") {
        format!(
            "price {} of this item (an operator runs `audiostudio stripe sync-catalog`)",
            order.price
        )
    } else if param == "customer" || message.contains("customer") {
        format!(
            "customer {customer} for your account (it may have been deleted at Stripe; contact support)"
        )
    } else {
        format!("object the session needs ({})", message.trim())
    };
    ApiError::Conflict(format!(
        "the checkout cannot be opened: Stripe has no {what}"
    ))
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
