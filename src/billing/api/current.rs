//! `GET /api/subscriptions/current`: the caller's plan and subscription as we know them.

use rocket::serde::json::Json;
use rocket::{State, get};
use serde::Serialize;
use utoipa::ToSchema;

use super::fields::time;
use crate::auth::AuthUser;
use crate::billing::store::{self, PlanView, SubscriptionRow};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::ids::UserId;
use crate::state::App;

/// The caller's plan and subscription as we know them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentSubscription {
    /// The subscription's plan, or the free plan when there is none.
    pub plan: Option<PlanView>,
    /// `free` without a subscription; otherwise Stripe's status (`active`, `trialing`,
    /// `past_due`, ...), including `incomplete` while the first payment is pending
    /// (3-D Secure, or declined): `plan` is then the plan being bought, not yet in effect.
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

impl CurrentSubscription {
    fn free(plan: Option<PlanView>) -> CurrentSubscription {
        CurrentSubscription {
            plan,
            status: "free".into(),
            subscription_id: None,
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            canceled_at: None,
            next_grant_at: None,
        }
    }

    fn of(row: SubscriptionRow, plan: Option<PlanView>) -> CurrentSubscription {
        CurrentSubscription {
            plan,
            status: row.status.to_string(),
            next_grant_at: next_grant_at(&row),
            subscription_id: Some(row.id),
            current_period_start: time(row.current_period_start),
            current_period_end: time(row.current_period_end),
            cancel_at_period_end: row.cancel_at_period_end,
            canceled_at: time(row.canceled_at),
        }
    }
}

/// The renewal at the period's end brings tokens only if it will be paid and happen.
fn next_grant_at(row: &SubscriptionRow) -> Option<String> {
    if row.status.is_in_good_standing() && !row.cancel_at_period_end {
        time(row.current_period_end)
    } else {
        None
    }
}

fn current_view(
    conn: &rusqlite::Connection,
    user_id: &UserId,
) -> Result<CurrentSubscription, ApiError> {
    // A running subscription wins; otherwise a first payment still pending shows as
    // that subscription with Stripe's status (`incomplete`), not as the free plan.
    let row = match store::live_subscription(conn, user_id)? {
        Some(row) => Some(row),
        None => store::pending_subscription(conn, user_id)?,
    };
    let Some(row) = row else {
        return Ok(CurrentSubscription::free(store::free_plan(conn)?));
    };
    let plan = store::plan(conn, &row.plan_id)?.map(|p| p.view);
    Ok(CurrentSubscription::of(row, plan))
}

pub(crate) async fn current_of(app: &App, user_id: &UserId) -> ApiResult<CurrentSubscription> {
    let user_id = user_id.clone();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::status::SubscriptionStatus;

    #[test]
    fn tokens_are_coming_only_for_a_paid_renewal() {
        let row = |status, cancel| SubscriptionRow {
            id: "s".into(),
            user_id: "u".into(),
            plan_id: "p".into(),
            stripe_subscription_id: None,
            stripe_customer_id: None,
            status,
            current_period_start: None,
            current_period_end: Some(0),
            cancel_at_period_end: cancel,
            canceled_at: None,
            created_at: 0,
        };
        assert!(next_grant_at(&row(SubscriptionStatus::Active, false)).is_some());
        assert!(next_grant_at(&row(SubscriptionStatus::Active, true)).is_none());
        assert!(next_grant_at(&row(SubscriptionStatus::PastDue, false)).is_none());
    }
}
