//! `GET /api/webhooks/status`: the state of webhook processing at a glance (admins).

use rocket::serde::json::Json;
use rocket::{State, get};

use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::state::App;
use crate::webhooks::store::{self, WebhookStatus};

/// Counts by status and by type, the last receipt, the oldest unprocessed event's age and
/// the newest unresolved error.
#[utoipa::path(get, path = "/api/webhooks/status", tag = "webhooks", security(("bearer" = [])),
    responses(
        (status = 200, description = "The state of webhook processing", body = WebhookStatus),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/status")]
pub(crate) async fn status(app: &State<App>, _admin: AdminUser) -> ApiResult<Json<WebhookStatus>> {
    let now = app.clock.now_ms();
    let status = app
        .db
        .read(move |c| store::status(c, now).map_err(ApiError::from))
        .await?;
    Ok(Json(status))
}
