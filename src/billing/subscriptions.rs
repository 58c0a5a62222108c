//! The caller's subscription (`/api/subscriptions`): current plan, checkout, portal, cancel, resume, plan changes, history.

use rocket::data::Capped;
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{State, get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::store::{self, Change, ChangeView, PlanView, SubscriptionRow};
use super::stripe::{self, CheckoutMode, Proration, Stripe};
use super::{CheckoutOrder, check_redirect, open_checkout, optional_json, stripe_for};
use crate::accounts::validate::Checks;
use crate::auth::AuthUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::idempotency::{IdempotencyHeader, Idempotent, Stored};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::{Millis, rfc3339};
use crate::state::App;

/// A catalogue id given by a client: short, printable.
pub(crate) fn check_id_field(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err("is required".into())
    } else if value.len() > 64 || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Err("is not an id from the catalogue".into())
    } else {
        Ok(())
    }
}

/// Checks optional success and cancel URLs against the allowed origins.
pub(crate) fn check_urls(
    app: &App,
    checks: Checks,
    success_url: Option<&str>,
    cancel_url: Option<&str>,
) -> Checks {
    checks
        .check(
            "success_url",
            success_url.map_or(Ok(()), |u| check_redirect(app, u)),
        )
        .check(
            "cancel_url",
            cancel_url.map_or(Ok(()), |u| check_redirect(app, u)),
        )
}

/// A fresh per-request reference for Stripe's Idempotency-Key, or one derived from the
/// caller's own `Idempotency-Key` (so the caller's retry reaches the same Stripe object).
pub(crate) fn request_ref(key: Option<&str>, fingerprint: &str) -> String {
    match key {
        Some(key) => format!("key:{key}:{fingerprint}"),
        None => uuid::Uuid::now_v7().to_string(),
    }
}

fn time(ms: Option<Millis>) -> Option<String> {
    ms.map(rfc3339)
}

fn secs(s: Option<i64>) -> Option<String> {
    s.and_then(|s| s.checked_mul(1000)).map(rfc3339)
}

/// The caller's plan and subscription as we know them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentSubscription {
    /// The plan in effect: the subscription's, or the free plan when there is none.
    pub plan: Option<PlanView>,
    /// `free` without a subscription; otherwise Stripe's status (`active`, `trialing`, `past_due`, ...).
    pub status: String,
    /// Our id of the subscription; absent on the free plan.
    pub subscription_id: Option<String>,
    pub current_period_start: Option<String>,
    pub current_period_end: Option<String>,
    /// The subscription ends at `current_period_end` (undo with `POST /resume`).
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<String>,
    /// When the next tokens are due: the renewal at the period's end, once paid. Absent
    /// when none are coming (free plan, cancellation scheduled, payment overdue).
    pub next_grant_at: Option<String>,
}

fn current_view(
    conn: &rusqlite::Connection,
    user_id: &str,
) -> Result<CurrentSubscription, ApiError> {
    let Some(row) = store::live_subscription(conn, user_id)? else {
        return Ok(CurrentSubscription {
            plan: store::free_plan(conn)?,
            status: "free".into(),
            subscription_id: None,
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            canceled_at: None,
            next_grant_at: None,
        });
    };
    let plan = store::plan(conn, &row.plan_id)?.map(|p| p.view);
    let grants_coming =
        matches!(row.status.as_str(), "active" | "trialing") && !row.cancel_at_period_end;
    Ok(CurrentSubscription {
        plan,
        status: row.status.clone(),
        subscription_id: Some(row.id.clone()),
        current_period_start: time(row.current_period_start),
        current_period_end: time(row.current_period_end),
        cancel_at_period_end: row.cancel_at_period_end,
        canceled_at: time(row.canceled_at),
        next_grant_at: if grants_coming {
            time(row.current_period_end)
        } else {
            None
        },
    })
}

async fn current_of(app: &App, user_id: &str) -> ApiResult<CurrentSubscription> {
    let user_id = user_id.to_owned();
    app.db.read(move |c| current_view(c, &user_id)).await
}

/// The caller's plan (the free plan when there is no subscription), status, period and next grant.
#[utoipa::path(get, path = "/api/subscriptions/current", tag = "billing", security(("bearer" = [])),
    responses(
        (status = 200, description = "The current plan and subscription", body = CurrentSubscription),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/current")]
pub async fn current(app: &State<App>, user: AuthUser) -> ApiResult<Json<CurrentSubscription>> {
    Ok(Json(current_of(app, &user.user_id).await?))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub plan_id: String,
    /// Where Checkout returns after payment (default: `billing_success_url`); must be on an
    /// allowed origin. `session_id={CHECKOUT_SESSION_ID}` is appended unless present.
    pub success_url: Option<String>,
    /// Where Checkout returns when abandoned (default: `billing_cancel_url`).
    pub cancel_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResponse {
    /// The Checkout Session id (`cs_...`): poll `GET /api/subscriptions/checkout/{id}`.
    pub id: String,
    /// Send the user here to pay.
    pub url: String,
}

fn conflict_with_subscription(plan_name: &str, status: &str) -> ApiError {
    ApiError::Conflict(format!(
        "you already have a subscription (plan {plan_name}, {status}); change plans with PUT /api/subscriptions/update"
    ))
}

/// The status of a running subscription Stripe has for the customer that we may not
/// have recorded yet (its webhook is still on the way).
async fn stripe_live_subscription(stripe: &Stripe, customer: &str) -> ApiResult<Option<String>> {
    let list = stripe.list_subscriptions(customer).await?;
    Ok(list
        .data
        .into_iter()
        .find(stripe::Subscription::is_live)
        .map(|s| s.status))
}

/// Start a subscription: a Stripe Checkout Session (mode `subscription`) for a paid plan.
#[utoipa::path(post, path = "/api/subscriptions/checkout", tag = "billing", security(("bearer" = [])), request_body = CheckoutRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the same session")),
    responses(
        (status = 201, description = "Session created: send the user to `url`", body = CheckoutResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already subscribed (use PUT /update), or the plan has no Stripe price yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or free plan, or a redirect URL off the allowed origins", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Stripe failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/checkout", data = "<body>")]
pub async fn checkout(
    app: &State<App>,
    user: AuthUser,
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
    let user_id = user.user_id.clone();
    let checks = Checks::default().check("plan_id", check_id_field(&body.plan_id));
    check_urls(
        app,
        checks,
        body.success_url.as_deref(),
        body.cancel_url.as_deref(),
    )
    .finish()?;
    let (plan_id, owner) = (body.plan_id.clone(), user_id.clone());
    let (plan, live, customer) = app
        .db
        .read(move |c| {
            Ok::<_, ApiError>((
                store::plan(c, &plan_id)?,
                store::live_subscription(c, &owner)?,
                store::customer_of(c, &owner)?,
            ))
        })
        .await?;
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
    if let Some(live) = &live {
        let name = current_plan_name(app, &live.plan_id).await?;
        return Err(conflict_with_subscription(&name, &live.status));
    }
    if let Some((_, Some(customer))) = &customer
        && let Some(status) = stripe_live_subscription(&stripe, customer).await?
    {
        return Err(ApiError::Conflict(format!(
            "you already have a subscription ({status}) that is being recorded here right now; to change plans use PUT /api/subscriptions/update"
        )));
    }
    let actor = Actor::user(&user_id, &client);
    let reference = request_ref(idem.key(), idem.fingerprint());
    let order = CheckoutOrder {
        mode: CheckoutMode::Subscription,
        user_id: &user_id,
        actor: &actor,
        price: &price,
        metadata: &[("user_id", &user_id), ("plan_id", &plan.view.id)],
        success_url: body.success_url.as_deref(),
        cancel_url: body.cancel_url.as_deref(),
        operation: "checkout",
        reference: &reference,
    };
    let (customer, session, url) = open_checkout(app, &stripe, &order).await?;
    let now = app.clock.now_ms();
    let plan_id = plan.view.id.clone();
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let new = store::insert_checkout(
                    tx,
                    &store::NewCheckout {
                        session: &session,
                        user_id: &user_id,
                        mode: CheckoutMode::Subscription,
                        plan_id: Some(&plan_id),
                        pack_id: None,
                        customer_id: &customer,
                    },
                    now,
                )?;
                if new {
                    store::record_change(
                        tx,
                        &Change {
                            user_id: &user_id,
                            stripe_subscription_id: None,
                            kind: "checkout_started",
                            from_plan_id: None,
                            to_plan_id: Some(&plan_id),
                            status: None,
                            details: json!({ "checkout_session_id": session.id }),
                        },
                        now,
                    )?;
                    audit::record(
                        tx,
                        now,
                        &actor,
                        Event::new("billing.checkout_created")
                            .target("checkout_session", &session.id)
                            .details(json!({ "mode": "subscription", "plan_id": plan_id, "stripe_customer_id": customer })),
                    )?;
                }
                Ok(Stored::json(
                    Status::Created,
                    &CheckoutResponse {
                        id: session.id.clone(),
                        url,
                    },
                ))
            })
        })
        .await
}

async fn current_plan_name(app: &App, plan_id: &str) -> ApiResult<String> {
    let id = plan_id.to_owned();
    let plan = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::plan(c, &id)?))
        .await?;
    Ok(plan.map_or_else(|| plan_id.to_owned(), |p| p.view.name))
}

/// A Checkout Session as the success page needs it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutStatus {
    pub id: String,
    /// `subscription` or `payment`.
    pub mode: String,
    /// `open`, `complete` or `expired`.
    pub status: String,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: Option<String>,
    /// Complete and paid (or nothing to pay): show success; tokens follow with the webhook.
    pub paid: bool,
    pub plan_id: Option<String>,
    pub pack_id: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub expires_at: Option<String>,
}

/// The state of a checkout the caller started, fetched from Stripe (others' sessions: 404).
#[utoipa::path(get, path = "/api/subscriptions/checkout/{id}", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "The Checkout Session id returned by checkout or purchase")),
    responses(
        (status = 200, description = "The session's state", body = CheckoutStatus),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Stripe failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/checkout/<id>")]
pub async fn checkout_status(
    app: &State<App>,
    user: AuthUser,
    id: &str,
) -> ApiResult<Json<CheckoutStatus>> {
    let stripe = stripe_for(app)?;
    let (owner, wanted) = (user.user_id.clone(), id.to_owned());
    let row = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::checkout_of(c, &owner, &wanted)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    let session = stripe.get_checkout_session(&row.id).await?;
    let now = app.clock.now_ms();
    let seen = session.clone();
    app.db
        .write(move |tx| Ok::<_, ApiError>(store::update_checkout(tx, &seen, now)?))
        .await?;
    let status = session.status.clone().unwrap_or_else(|| row.status.clone());
    let paid = status == "complete"
        && matches!(
            session.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        );
    Ok(Json(CheckoutStatus {
        id: row.id,
        mode: row.mode,
        status,
        payment_status: session.payment_status,
        paid,
        plan_id: row.plan_id,
        pack_id: row.pack_id,
        amount_total: session.amount_total,
        currency: session.currency,
        expires_at: secs(session.expires_at),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalRequest {
    /// Where the portal's "return" link goes (default: `public_base_url`); allowed origins only.
    pub return_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalResponse {
    pub url: String,
}

/// A Stripe Billing Portal session, where the caller manages payment methods and invoices.
#[utoipa::path(post, path = "/api/subscriptions/portal", tag = "billing", security(("bearer" = [])), request_body(content = Option<PortalRequest>, description = "Optional"),
    responses(
        (status = 200, description = "Send the user to `url`", body = PortalResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No billing account yet (nothing bought)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A return URL off the allowed origins", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/portal", data = "<body>")]
pub async fn portal(
    app: &State<App>,
    user: AuthUser,
    body: Capped<String>,
) -> ApiResult<Json<PortalResponse>> {
    let body: PortalRequest = optional_json(body)?.unwrap_or_default();
    let stripe = stripe_for(app)?;
    Checks::default()
        .check(
            "return_url",
            body.return_url
                .as_deref()
                .map_or(Ok(()), |u| check_redirect(app, u)),
        )
        .finish()?;
    let owner = user.user_id.clone();
    let customer = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::customer_of(c, &owner)?))
        .await?
        .and_then(|(_, customer)| customer)
        .ok_or_else(|| {
            ApiError::Conflict(
                "you have no billing account yet: subscribe or buy a token pack first".into(),
            )
        })?;
    let return_url = body
        .return_url
        .unwrap_or_else(|| app.settings.public_base_url.clone());
    let session = stripe
        .create_portal_session(
            &customer,
            &return_url,
            &stripe::idempotency_key(&["portal", &user.user_id, &uuid::Uuid::now_v7().to_string()]),
        )
        .await?;
    Ok(Json(PortalResponse { url: session.url }))
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// `true` (default): keep the plan until the period ends; `false`: end it now.
    #[serde(default = "yes")]
    pub at_period_end: bool,
}

impl Default for CancelRequest {
    fn default() -> Self {
        CancelRequest {
            at_period_end: true,
        }
    }
}

/// The caller's running subscription with its Stripe id, or the 409 that says there is none.
async fn live_or_conflict(app: &App, user_id: &str) -> ApiResult<(SubscriptionRow, String)> {
    let owner = user_id.to_owned();
    let row = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::live_subscription(c, &owner)?))
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(
                "you have no running subscription; start one with POST /api/subscriptions/checkout"
                    .into(),
            )
        })?;
    let stripe_id = row.stripe_subscription_id.clone().ok_or_else(|| {
        ApiError::Conflict("this subscription is not managed through Stripe".into())
    })?;
    Ok((row, stripe_id))
}

/// Stores what Stripe answered about a subscription, with a history entry and an audit row.
#[allow(clippy::too_many_arguments)]
async fn record_subscription(
    app: &App,
    actor: Actor,
    row: SubscriptionRow,
    subscription: stripe::Subscription,
    kind: &'static str,
    action: &'static str,
    fallback_plan: String,
    details: serde_json::Value,
) -> ApiResult<()> {
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            let plan_id = match subscription.price_id() {
                Some(price) => store::plan_by_price(tx, price)?.map(|p| p.view.id),
                None => None,
            }
            .unwrap_or(fallback_plan);
            store::upsert_subscription(tx, &row.user_id, &plan_id, &subscription, now)?;
            store::record_change(
                tx,
                &Change {
                    user_id: &row.user_id,
                    stripe_subscription_id: Some(&subscription.id),
                    kind,
                    from_plan_id: Some(&row.plan_id),
                    to_plan_id: Some(&plan_id),
                    status: Some(&subscription.status),
                    details: details.clone(),
                },
                now,
            )?;
            let mut details = details;
            if let Some(map) = details.as_object_mut() {
                map.insert("stripe_subscription_id".into(), json!(subscription.id));
                map.insert("from_plan_id".into(), json!(row.plan_id));
                map.insert("to_plan_id".into(), json!(plan_id));
                map.insert("status".into(), json!(subscription.status));
            }
            audit::record(
                tx,
                now,
                &actor,
                Event::new(action)
                    .target("subscription", &row.id)
                    .details(details),
            )?;
            Ok::<_, ApiError>(())
        })
        .await
}

/// Cancel the subscription: at the period's end (default; undo with `/resume`) or now.
#[utoipa::path(post, path = "/api/subscriptions/cancel", tag = "billing", security(("bearer" = [])), request_body(content = Option<CancelRequest>, description = "Optional; `at_period_end` defaults to true"),
    responses(
        (status = 200, description = "The subscription after the change", body = CurrentSubscription),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No running subscription", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong field types", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/cancel", data = "<body>")]
pub async fn cancel(
    app: &State<App>,
    user: AuthUser,
    client: ClientInfo,
    body: Capped<String>,
) -> ApiResult<Json<CurrentSubscription>> {
    let body: CancelRequest = optional_json(body)?.unwrap_or_default();
    let stripe = stripe_for(app)?;
    let (row, stripe_id) = live_or_conflict(app, &user.user_id).await?;
    let subscription = if body.at_period_end {
        stripe
            .set_cancel_at_period_end(
                &stripe_id,
                true,
                &stripe::idempotency_key(&["cancel", &row.id, &uuid::Uuid::now_v7().to_string()]),
            )
            .await?
    } else {
        stripe.cancel_subscription(&stripe_id).await?
    };
    let kind = if body.at_period_end {
        "cancel_scheduled"
    } else {
        "canceled"
    };
    let fallback = row.plan_id.clone();
    record_subscription(
        app,
        Actor::user(&user.user_id, &client),
        row,
        subscription,
        kind,
        "billing.subscription_cancel",
        fallback,
        json!({ "at_period_end": body.at_period_end }),
    )
    .await?;
    Ok(Json(current_of(app, &user.user_id).await?))
}

/// Undo a scheduled cancellation: the subscription renews again.
#[utoipa::path(post, path = "/api/subscriptions/resume", tag = "billing", security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscription after the change", body = CurrentSubscription),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No running subscription, or it is not set to end", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/resume")]
pub async fn resume(
    app: &State<App>,
    user: AuthUser,
    client: ClientInfo,
) -> ApiResult<Json<CurrentSubscription>> {
    let stripe = stripe_for(app)?;
    let (row, stripe_id) = live_or_conflict(app, &user.user_id).await?;
    // Our copy may lag behind a change made in the portal: ask Stripe before refusing.
    if !row.cancel_at_period_end
        && !stripe
            .get_subscription(&stripe_id)
            .await?
            .cancel_at_period_end
    {
        return Err(ApiError::Conflict(
            "the subscription is not set to end; there is nothing to resume".into(),
        ));
    }
    let subscription = stripe
        .set_cancel_at_period_end(
            &stripe_id,
            false,
            &stripe::idempotency_key(&["resume", &row.id, &uuid::Uuid::now_v7().to_string()]),
        )
        .await?;
    let fallback = row.plan_id.clone();
    record_subscription(
        app,
        Actor::user(&user.user_id, &client),
        row,
        subscription,
        "resumed",
        "billing.subscription_resume",
        fallback,
        json!({}),
    )
    .await?;
    Ok(Json(current_of(app, &user.user_id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// The paid plan to move to.
    pub plan_id: String,
    /// `create_prorations` (default: credit and charge the difference on the next invoice),
    /// `none`, or `always_invoice` (charge the difference now; a declined card refuses the change with 402).
    pub proration: Option<String>,
}

/// Move the subscription to another paid plan (a scheduled cancellation is undone).
#[utoipa::path(put, path = "/api/subscriptions/update", tag = "billing", security(("bearer" = [])), request_body = UpdateRequest,
    responses(
        (status = 200, description = "The subscription after the change", body = CurrentSubscription),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "The card was declined (always_invoice)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No running subscription, already on that plan, or the plan has no Stripe price", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or free plan, or an unknown proration", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Stripe failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[put("/update", data = "<body>")]
pub async fn update(
    app: &State<App>,
    user: AuthUser,
    client: ClientInfo,
    body: JsonBody<'_, UpdateRequest>,
) -> ApiResult<Json<CurrentSubscription>> {
    let body = parse_body(body)?;
    let stripe = stripe_for(app)?;
    let proration = match body.proration.as_deref() {
        None => Ok(Proration::CreateProrations),
        Some(p) => Proration::parse(p)
            .ok_or_else(|| "must be one of create_prorations, none, always_invoice".to_owned()),
    };
    Checks::default()
        .check("plan_id", check_id_field(&body.plan_id))
        .check(
            "proration",
            proration.as_ref().map(|_| ()).map_err(Clone::clone),
        )
        .finish()?;
    let proration = proration.unwrap_or(Proration::CreateProrations);
    let plan_id = body.plan_id.clone();
    let plan = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::plan(c, &plan_id)?))
        .await?
        .filter(|p| p.active)
        .ok_or_else(|| ApiError::field("plan_id", "is not a plan on sale"))?;
    if plan.view.free {
        return Err(ApiError::field(
            "plan_id",
            "is the free plan: cancel the subscription to return to it",
        ));
    }
    let Some(price) = plan.stripe_price_id.clone() else {
        return Err(ApiError::Conflict(format!(
            "plan {} cannot be bought yet: it has no Stripe price",
            plan.view.id
        )));
    };
    let (row, stripe_id) = live_or_conflict(app, &user.user_id).await?;
    if row.plan_id == plan.view.id {
        return Err(ApiError::Conflict(format!(
            "you are already on plan {}",
            plan.view.name
        )));
    }
    let remote = stripe.get_subscription(&stripe_id).await?;
    if remote.price_id() == Some(price.as_str()) {
        return Err(ApiError::Conflict(format!(
            "you are already on plan {} (the change is on its way)",
            plan.view.name
        )));
    }
    let item = remote
        .items
        .data
        .first()
        .map(|i| i.id.clone())
        .ok_or_else(|| {
            ApiError::BadGateway("Stripe returned a subscription without items".into())
        })?;
    let subscription = stripe
        .change_subscription_price(
            &stripe_id,
            &item,
            &price,
            proration,
            &[("user_id", &user.user_id), ("plan_id", &plan.view.id)],
            &stripe::idempotency_key(&[
                "update",
                &row.id,
                &plan.view.id,
                &uuid::Uuid::now_v7().to_string(),
            ]),
        )
        .await?;
    record_subscription(
        app,
        Actor::user(&user.user_id, &client),
        row,
        subscription,
        "plan_changed",
        "billing.subscription_update",
        plan.view.id.clone(),
        json!({ "proration": proration.as_str() }),
    )
    .await?;
    Ok(Json(current_of(app, &user.user_id).await?))
}

/// One subscription of the caller, as we recorded it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodView {
    pub subscription_id: String,
    pub plan_id: String,
    pub plan_name: Option<String>,
    pub status: String,
    pub current_period_start: Option<String>,
    pub current_period_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<String>,
    pub started_at: String,
}

/// An invoice, as Stripe has it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView {
    pub id: String,
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: Option<String>,
    /// In the smallest currency unit.
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: Option<String>,
    /// Stripe's page for the invoice (view, pay, download).
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    /// `subscription_create`, `subscription_cycle`, `subscription_update`, ...
    pub billing_reason: Option<String>,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    pub created_at: Option<String>,
}

fn invoice_view(invoice: stripe::Invoice) -> InvoiceView {
    // An invoice's own period is the one before it; its lines carry the period billed.
    let line = invoice.lines.as_ref().and_then(|l| {
        l.data
            .iter()
            .find(|line| !line.proration)
            .or(l.data.first())
    });
    let (start, end) = match line {
        Some(line) if line.period.start.is_some() => (line.period.start, line.period.end),
        _ => (invoice.period_start, invoice.period_end),
    };
    InvoiceView {
        id: invoice.id,
        number: invoice.number,
        status: invoice.status,
        amount_due: invoice.amount_due,
        amount_paid: invoice.amount_paid,
        currency: invoice.currency,
        hosted_invoice_url: invoice.hosted_invoice_url,
        invoice_pdf: invoice.invoice_pdf,
        billing_reason: invoice.billing_reason,
        period_start: secs(start),
        period_end: secs(end),
        created_at: secs(invoice.created),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryResponse {
    /// The caller's subscriptions, newest first.
    pub subscriptions: Vec<PeriodView>,
    /// Checkouts started, plan changes, cancellations and resumptions, newest first.
    pub changes: Vec<ChangeView>,
    /// The caller's invoices from Stripe, newest first.
    pub invoices: Vec<InvoiceView>,
}

/// The caller's subscriptions, plan changes and invoices (each list newest first, at most `limit`).
#[utoipa::path(get, path = "/api/subscriptions/history", tag = "billing", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query, description = "1 to 100 per list, default 20")),
    responses(
        (status = 200, description = "History", body = HistoryResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Stripe failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/history?<limit>")]
pub async fn history(
    app: &State<App>,
    user: AuthUser,
    limit: Option<&str>,
) -> ApiResult<Json<HistoryResponse>> {
    let limit = crate::http::pagination::page_limit(limit, 20, 100)?;
    let stripe = stripe_for(app)?;
    let owner = user.user_id.clone();
    let (rows, changes, customer) = app
        .db
        .read(move |c| {
            let rows = store::subscriptions_of(c, &owner, limit)?;
            let mut named = Vec::with_capacity(rows.len());
            for row in rows {
                let name = store::plan(c, &row.plan_id)?.map(|p| p.view.name);
                named.push((row, name));
            }
            Ok::<_, ApiError>((
                named,
                store::changes_of(c, &owner, limit)?,
                store::customer_of(c, &owner)?.and_then(|(_, customer)| customer),
            ))
        })
        .await?;
    let invoices = match customer {
        Some(customer) => stripe
            .list_invoices(&customer, limit)
            .await?
            .data
            .into_iter()
            .map(invoice_view)
            .collect(),
        None => Vec::new(),
    };
    let subscriptions = rows
        .into_iter()
        .map(|(row, plan_name)| PeriodView {
            subscription_id: row.id,
            plan_id: row.plan_id,
            plan_name,
            status: row.status,
            current_period_start: time(row.current_period_start),
            current_period_end: time(row.current_period_end),
            cancel_at_period_end: row.cancel_at_period_end,
            canceled_at: time(row.canceled_at),
            started_at: rfc3339(row.created_at),
        })
        .collect();
    Ok(Json(HistoryResponse {
        subscriptions,
        changes,
        invoices,
    }))
}
