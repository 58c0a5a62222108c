//! `PUT /api/subscriptions/update`: move the subscription to another paid plan.

use rocket::serde::json::Json;
use rocket::{State, put};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::changes::{Changed, live_or_conflict, record_subscription};
use super::current::{CurrentSubscription, current_of};
use super::fields::{catalogue_id, fresh_ref, stripe_for};
use crate::auth::AuthUser;
use crate::billing::status::ChangeKind;
use crate::billing::store::{self, Plan, SubscriptionRow};
use crate::billing::stripe::{self, Proration};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::validate::Checks;
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::Actor;
use crate::platform::ids::PlanId;
use crate::state::App;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// The paid plan to move to.
    #[schema(pattern = "^[!-~]{1,64}$", example = "pro")]
    pub plan_id: String,
    /// `create_prorations` (default: credit and charge the difference on the next invoice),
    /// `none`, or `always_invoice` (charge the difference now; a declined card refuses the change with 402).
    #[schema(
        pattern = "^(create_prorations|none|always_invoice)$",
        example = "create_prorations"
    )]
    pub proration: Option<String>,
}

fn proration(value: Option<&str>) -> Result<Proration, String> {
    match value {
        None => Ok(Proration::CreateProrations),
        Some(p) => Proration::parse(p)
            .ok_or_else(|| "must be one of create_prorations, none, always_invoice".to_owned()),
    }
}

/// The plan to move to and its Stripe price: on sale, paid, synced.
async fn target_plan(app: &App, plan_id: PlanId) -> ApiResult<(Plan, String)> {
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
    Ok((plan, price))
}

/// The subscription item to move, unless the subscription is on that plan (here or in Stripe) already.
async fn item_to_move(
    stripe: &stripe::Stripe,
    row: &SubscriptionRow,
    stripe_id: &str,
    plan: &Plan,
    price: &str,
) -> ApiResult<String> {
    if row.plan_id == plan.view.id {
        return Err(ApiError::Conflict(format!(
            "you are already on plan {}",
            plan.view.name
        )));
    }
    let remote = stripe.get_subscription(stripe_id).await?;
    if remote.price_id() == Some(price) {
        return Err(ApiError::Conflict(format!(
            "you are already on plan {} (the change is on its way)",
            plan.view.name
        )));
    }
    remote
        .items
        .data
        .first()
        .map(|i| i.id.clone())
        .ok_or_else(|| ApiError::BadGateway("Stripe returned a subscription without items".into()))
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
    let mut checks = Checks::default();
    let plan_id = checks.field("plan_id", catalogue_id::<PlanId>(&body.plan_id));
    let proration = checks.field("proration", proration(body.proration.as_deref()));
    let (plan_id, proration) = checks.finish((plan_id, proration))?;
    let (plan, price) = target_plan(app, plan_id).await?;
    let (row, stripe_id) = live_or_conflict(app, &user.user_id).await?;
    let item = item_to_move(&stripe, &row, &stripe_id, &plan, &price).await?;
    let subscription = stripe
        .change_subscription_price(
            &stripe_id,
            &item,
            &price,
            proration,
            &[
                ("user_id", user.user_id.as_str()),
                ("plan_id", plan.view.id.as_str()),
            ],
            &stripe::idempotency_key(&["update", &row.id, &plan.view.id, &fresh_ref()]),
        )
        .await?;
    let changed = Changed {
        actor: Actor::user(&user.user_id, &client),
        row,
        subscription,
        kind: ChangeKind::PlanChanged,
        action: "billing.subscription_update",
        fallback_plan: plan.view.id.clone(),
        details: json!({ "proration": proration.as_str() }),
    };
    record_subscription(app, changed).await?;
    Ok(Json(current_of(app, &user.user_id).await?))
}
