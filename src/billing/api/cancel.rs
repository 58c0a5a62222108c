//! `POST /api/subscriptions/cancel`: end the subscription at the period's end (default) or now.

use rocket::data::Capped;
use rocket::serde::json::Json;
use rocket::{State, post};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::changes::{Changed, live_or_conflict, record_subscription};
use super::current::{CurrentSubscription, current_of};
use super::fields::{fresh_ref, optional_json, stripe_for};
use crate::auth::AuthUser;
use crate::billing::status::ChangeKind;
use crate::billing::stripe;
use crate::http::ClientInfo;
use crate::http::error::{ApiResult, Problem};
use crate::platform::audit::Actor;
use crate::state::App;

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
    let (subscription, kind) = if body.at_period_end {
        let key = stripe::idempotency_key(&["cancel", &row.id, &fresh_ref()]);
        let scheduled = stripe
            .set_cancel_at_period_end(&stripe_id, true, &key)
            .await?;
        (scheduled, ChangeKind::CancelScheduled)
    } else {
        let ended = stripe.cancel_subscription(&stripe_id).await?;
        (ended, ChangeKind::Canceled)
    };
    let changed = Changed {
        actor: Actor::user(&user.user_id, &client),
        fallback_plan: row.plan_id.clone(),
        row,
        subscription,
        kind,
        action: "billing.subscription_cancel",
        details: json!({ "at_period_end": body.at_period_end }),
    };
    record_subscription(app, changed).await?;
    Ok(Json(current_of(app, &user.user_id).await?))
}
