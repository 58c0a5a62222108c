//! `GET /api/subscriptions/plans`: the plans on sale.

use rocket::serde::json::Json;
use rocket::{State, get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::billing::store::{self, PlanView};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::state::App;

#[derive(Debug, Serialize, ToSchema)]
pub struct PlansResponse {
    pub plans: Vec<PlanView>,
}

/// Plans on sale, with prices, monthly tokens and features (no authentication needed).
#[utoipa::path(get, path = "/api/subscriptions/plans", tag = "billing",
    responses(
        (status = 200, description = "Active plans, in catalogue order", body = PlansResponse),
        (status = 400, description = "A malformed request", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/plans")]
pub async fn list_plans(app: &State<App>) -> ApiResult<Json<PlansResponse>> {
    let plans = app
        .db
        .read(|c| Ok::<_, ApiError>(store::active_plans(c)?))
        .await?;
    Ok(Json(PlansResponse { plans }))
}
