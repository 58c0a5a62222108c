//! `POST /api/subscriptions/checkout`: start a subscription with a Stripe Checkout Session (mode `subscription`).

use rocket::{State, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::checkout_session::{CheckoutOrder, checkout_fields, checkout_ref, sell};
use super::fields::stripe_for;
use crate::auth::AuthUser;
use crate::billing::status::ChangeKind;
use crate::billing::store::{self, Change, Plan, SubscriptionRow};
use crate::billing::stripe::{self, CheckoutMode, Stripe};
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::idempotency::{IdempotencyHeader, Idempotent, Stored};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::ids::{PlanId, UserId};
use crate::state::App;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    #[schema(pattern = "^[!-~]{1,64}$", example = "pro")]
    pub plan_id: String,
    /// Where Checkout returns after payment (default: `billing_success_url`); must be on an
    /// allowed origin. `session_id={CHECKOUT_SESSION_ID}` is appended unless present.
    pub success_url: Option<String>,
    /// Where Checkout returns when abandoned (default: `billing_cancel_url`).
    pub cancel_url: Option<String>,
}

pub use super::checkout_session::CheckoutResponse;

/// The Stripe price of a plan a checkout may sell: on sale, paid, synced to Stripe.
fn price_for_checkout(plan: Option<Plan>) -> ApiResult<(Plan, String)> {
    let plan = plan
        .filter(|p| p.active)
        .ok_or_else(|| ApiError::field("plan_id", "is not a plan on sale"))?;
    if plan.view.free {
        return Err(ApiError::field(
            "plan_id",
            "is the free plan, which needs no checkout; to return to it, cancel your subscription",
        ));
    }
    let Some(price) = plan.stripe_price_id.clone() else {
        return Err(ApiError::Conflict(format!(
            "plan {} cannot be bought yet: it has no Stripe price (an operator runs `audiostudio stripe sync-catalog`)",
            plan.view.id
        )));
    };
    Ok((plan, price))
}

/// What a checkout reads first: the plan, the caller's running subscription and Stripe customer.
async fn read_state(
    app: &App,
    plan_id: PlanId,
    owner: &UserId,
) -> ApiResult<(Option<Plan>, Option<SubscriptionRow>, Option<String>)> {
    let owner = owner.clone();
    app.db
        .read(move |c| {
            Ok::<_, ApiError>((
                store::plan(c, &plan_id)?,
                store::live_subscription(c, &owner)?,
                store::customer_of(c, &owner)?.and_then(|(_, customer)| customer),
            ))
        })
        .await
}

/// One subscription per user: the 409 when one is running here, or in Stripe already
/// (its webhook is still on the way).
async fn refuse_a_second(
    app: &App,
    stripe: &Stripe,
    live: Option<SubscriptionRow>,
    customer: Option<&str>,
) -> ApiResult<()> {
    if let Some(live) = live {
        let name = plan_name(app, &live.plan_id).await?;
        return Err(ApiError::Conflict(format!(
            "you already have a subscription (plan {name}, {}); change plans with PUT /api/subscriptions/update",
            live.status
        )));
    }
    let Some(customer) = customer else {
        return Ok(());
    };
    let list = stripe.list_subscriptions(customer).await?;
    match list.data.iter().find(|s| s.is_live()) {
        Some(running) => Err(ApiError::Conflict(format!(
            "you already have a subscription ({}) that is being recorded here right now; to change plans use PUT /api/subscriptions/update",
            running.status
        ))),
        None => Ok(()),
    }
}

async fn plan_name(app: &App, plan_id: &PlanId) -> ApiResult<String> {
    let id = plan_id.clone();
    let plan = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::plan(c, &id)?))
        .await?;
    Ok(plan.map_or_else(|| plan_id.to_string(), |p| p.view.name))
}

/// Records the session, the history entry and the audit row, once per session.
fn record_checkout(
    tx: &rusqlite::Transaction<'_>,
    user_id: &UserId,
    plan_id: &PlanId,
    customer: &str,
    session: &stripe::CheckoutSession,
    actor: &Actor,
    now: Millis,
) -> ApiResult<()> {
    let new = store::NewCheckout {
        session,
        user_id,
        mode: CheckoutMode::Subscription,
        plan_id: Some(plan_id),
        pack_id: None,
        customer_id: customer,
    };
    if !store::insert_checkout(tx, &new, now)? {
        return Ok(());
    }
    let change = Change {
        user_id,
        stripe_subscription_id: None,
        kind: ChangeKind::CheckoutStarted,
        from_plan_id: None,
        to_plan_id: Some(plan_id),
        status: None,
        details: json!({ "checkout_session_id": session.id }),
    };
    store::record_change(tx, &change, now)?;
    let event = Event::new("billing.checkout_created")
        .target("checkout_session", &session.id)
        .details(
            json!({ "mode": "subscription", "plan_id": plan_id, "stripe_customer_id": customer }),
        );
    audit::record(tx, now, actor, event)?;
    Ok(())
}

/// Start a subscription: a Stripe Checkout Session (mode `subscription`) for a paid plan.
#[utoipa::path(post, path = "/api/subscriptions/checkout", tag = "billing", security(("bearer" = [])), request_body = CheckoutRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the same session")),
    responses(
        (status = 201, description = "Session created: send the user to `url`", body = CheckoutResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already subscribed (use PUT /update), or the plan has no Stripe price yet; or Stripe did not find the price or the customer of the session (the detail names which)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or free plan, or a redirect URL off the allowed origins", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Stripe failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/checkout", data = "<body>")]
pub async fn checkout(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    client: ClientInfo,
    key: IdempotencyHeader,
    body: JsonBody<'_, CheckoutRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let idem = match Idempotent::begin(&app.db, &user, key, now, "billing.checkout", &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let stripe = stripe_for(app)?;
    let plan_id: PlanId = checkout_fields(
        app,
        "plan_id",
        &body.plan_id,
        body.success_url.as_deref(),
        body.cancel_url.as_deref(),
    )?;
    let user_id = user.user_id.clone();
    let (plan, live, customer) = read_state(app, plan_id, &user_id).await?;
    let (plan, price) = price_for_checkout(plan)?;
    refuse_a_second(app, &stripe, live, customer.as_deref()).await?;
    let actor = Actor::user(&user_id, &client);
    let reference = checkout_ref(&idem);
    let order = CheckoutOrder {
        mode: CheckoutMode::Subscription,
        user_id: &user_id,
        actor: &actor,
        price: &price,
        metadata: &[
            ("user_id", user_id.as_str()),
            ("plan_id", plan.view.id.as_str()),
        ],
        success_url: body.success_url.as_deref(),
        cancel_url: body.cancel_url.as_deref(),
        operation: "checkout",
        reference: &reference,
    };
    let (plan_id, owner, who) = (plan.view.id.clone(), user_id.clone(), actor.clone());
    sell(
        app,
        &stripe,
        idem,
        &order,
        move |tx, customer, session, now| {
            record_checkout(tx, &owner, &plan_id, customer, session, &who, now)
        },
    )
    .await
}
