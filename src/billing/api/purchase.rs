//! `POST /api/tokens/purchase`: buy a token pack with a Checkout Session in mode `payment` and a pending purchase row.
//!
//! The tokens arrive when Stripe reports the payment (the webhook), keyed by the session,
//! so a purchase grants at most once.

use rocket::{State, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::checkout_session::{
    CheckoutOrder, CheckoutResponse, checkout_fields, checkout_ref, sell,
};
use super::fields::stripe_for;
use crate::auth::AuthUser;
use crate::billing::store::{self, Pack};
use crate::billing::stripe::{self, CheckoutMode};
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::idempotency::{IdempotencyHeader, Idempotent, Stored};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::ids::{PackId, UserId};
use crate::state::App;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    #[schema(pattern = "^[!-~]{1,64}$", example = "pack_small")]
    pub pack_id: String,
    /// Default: `billing_success_url`; allowed origins only.
    pub success_url: Option<String>,
    /// Default: `billing_cancel_url`; allowed origins only.
    pub cancel_url: Option<String>,
}

/// The pack on sale and its Stripe price, or why it cannot be bought.
async fn pack_for_sale(app: &App, pack_id: PackId) -> ApiResult<(Pack, String)> {
    let pack = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::pack(c, &pack_id)?))
        .await?
        .filter(|p| p.active)
        .ok_or_else(|| ApiError::field("pack_id", "is not a token pack on sale"))?;
    let Some(price) = pack.stripe_price_id.clone() else {
        return Err(ApiError::Conflict(format!(
            "pack {} cannot be bought yet: it has no Stripe price (an operator runs `audiostudio stripe sync-catalog`)",
            pack.id
        )));
    };
    Ok((pack, price))
}

/// Records the session, the pending purchase and the audit row, once per session.
fn record_purchase(
    tx: &rusqlite::Transaction<'_>,
    user_id: &UserId,
    pack: &Pack,
    customer: &str,
    session: &stripe::CheckoutSession,
    actor: &Actor,
    now: Millis,
) -> ApiResult<()> {
    let new = store::NewCheckout {
        session,
        user_id,
        mode: CheckoutMode::Payment,
        plan_id: None,
        pack_id: Some(&pack.id),
        customer_id: customer,
    };
    if !store::insert_checkout(tx, &new, now)? {
        return Ok(());
    }
    store::insert_pending_pack(tx, user_id, pack, &session.id, now)?;
    let event = Event::new("billing.pack_checkout_created")
        .target("checkout_session", &session.id)
        .details(json!({
            "mode": "payment",
            "pack_id": pack.id,
            "tokens": pack.tokens,
            "amount_cents": pack.price_cents,
            "currency": pack.currency,
            "stripe_customer_id": customer,
        }));
    audit::record(tx, now, actor, event)?;
    Ok(())
}

/// Buy a token pack: a Stripe Checkout Session (mode `payment`); the tokens are granted once paid.
#[utoipa::path(post, path = "/api/tokens/purchase", tag = "billing", security(("bearer" = [])), request_body = PurchaseRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the same session")),
    responses(
        (status = 201, description = "Session created: send the user to `url`", body = CheckoutResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The pack has no Stripe price yet; or Stripe did not find the price or the customer of the session (the detail names which)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown pack, or a redirect URL off the allowed origins", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Stripe failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/purchase", data = "<body>")]
pub async fn purchase(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    client: ClientInfo,
    key: IdempotencyHeader,
    body: JsonBody<'_, PurchaseRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let idem = match Idempotent::begin(&app.db, &user, key, now, "billing.purchase", &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let stripe = stripe_for(app)?;
    let pack_id: PackId = checkout_fields(
        app,
        "pack_id",
        &body.pack_id,
        body.success_url.as_deref(),
        body.cancel_url.as_deref(),
    )?;
    let (pack, price) = pack_for_sale(app, pack_id).await?;
    let user_id = user.user_id.clone();
    let actor = Actor::user(&user_id, &client);
    let reference = checkout_ref(&idem);
    let order = CheckoutOrder {
        mode: CheckoutMode::Payment,
        user_id: &user_id,
        actor: &actor,
        price: &price,
        metadata: &[("user_id", user_id.as_str()), ("pack_id", pack.id.as_str())],
        success_url: body.success_url.as_deref(),
        cancel_url: body.cancel_url.as_deref(),
        operation: "purchase",
        reference: &reference,
    };
    let (owner, who, sold) = (user_id.clone(), actor.clone(), pack.clone());
    sell(
        app,
        &stripe,
        idem,
        &order,
        move |tx, customer, session, now| {
            record_purchase(tx, &owner, &sold, customer, session, &who, now)
        },
    )
    .await
}
