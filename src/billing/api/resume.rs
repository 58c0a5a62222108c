//! `POST /api/subscriptions/resume`: undo a scheduled cancellation.

use rocket::serde::json::Json;
use rocket::{State, post};
use serde_json::json;

use super::changes::{Changed, live_or_conflict, record_subscription};
use super::current::{CurrentSubscription, current_of};
use super::fields::{fresh_ref, stripe_for};
use crate::auth::AuthUser;
use crate::billing::status::ChangeKind;
use crate::billing::stripe;
use crate::http::ClientInfo;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::audit::Actor;
use crate::state::App;

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
    let key = stripe::idempotency_key(&["resume", &row.id, &fresh_ref()]);
    let subscription = stripe
        .set_cancel_at_period_end(&stripe_id, false, &key)
        .await?;
    let changed = Changed {
        actor: Actor::user(&user.user_id, &client),
        fallback_plan: row.plan_id.clone(),
        row,
        subscription,
        kind: ChangeKind::Resumed,
        action: "billing.subscription_resume",
        details: json!({}),
    };
    record_subscription(app, changed).await?;
    Ok(Json(current_of(app, &user.user_id).await?))
}
