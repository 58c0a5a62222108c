//! `GET /api/subscriptions/checkout/{id}`: the state of a checkout the caller started, as Stripe has it now.

use rocket::serde::json::Json;
use rocket::{State, get};
use serde::Serialize;
use utoipa::ToSchema;

use super::fields::{secs, stripe_for};
use crate::auth::AuthUser;
use crate::billing::status::CheckoutStatus as SessionStatus;
use crate::billing::store;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::ids::{PackId, PlanId};
use crate::state::App;

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
    #[schema(value_type = Option<String>)]
    pub plan_id: Option<PlanId>,
    #[schema(value_type = Option<String>)]
    pub pack_id: Option<PackId>,
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
    // Stripe's word when it gives one (even one we do not know), else ours.
    let status = session
        .status
        .clone()
        .unwrap_or_else(|| row.status.to_string());
    let paid = status == SessionStatus::Complete.as_str() && session.is_paid();
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
