//! `POST /api/webhooks/retry`: an admin requeues one failed or ignored event, or every failed one.

use rocket::data::{Data, ToByteUnit};
use rocket::serde::json::Json;
use rocket::{State, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Wakeup;
use crate::auth::AdminUser;
use crate::http::ClientInfo;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::audit::Actor;
use crate::state::App;
use crate::webhooks::ops;
use crate::webhooks::store::RequeueError;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// One failed or ignored event; absent: every failed event.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$",
        example = "evt_1"
    )]
    pub event_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetryResponse {
    /// How many events are pending again.
    pub requeued: usize,
}

impl From<RequeueError> for ApiError {
    fn from(e: RequeueError) -> Self {
        match e {
            RequeueError::NotFound(_) => ApiError::NotFound,
            RequeueError::NotRetryable { .. } => ApiError::Conflict(e.to_string()),
            RequeueError::Sqlite(e) => ApiError::from(e),
            RequeueError::Db(e) => ApiError::from(e),
        }
    }
}

/// The request, from a body that may be empty (meaning `{}`).
async fn read_request(body: Data<'_>) -> ApiResult<RetryRequest> {
    let body = body
        .open(16.kibibytes())
        .into_bytes()
        .await
        .map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
    if !body.is_complete() {
        return Err(ApiError::PayloadTooLarge);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RetryRequest::default());
    }
    serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::Unprocessable(format!("the body does not have the expected shape: {e}"))
        }
        _ => ApiError::BadRequest(format!("the body is not valid JSON: {e}")),
    })
}

/// Requeue one failed or ignored event, or every failed one, for the worker to process
/// again now. Attempts restart from 0; the last error stays visible until the next
/// attempt. Audited as `webhooks.retry`. An empty body means `{}`.
#[utoipa::path(post, path = "/api/webhooks/retry", tag = "webhooks", security(("bearer" = [])), request_body(content = Option<RetryRequest>, description = "Optional; an empty body means `{}`"),
    responses(
        (status = 200, description = "Requeued", body = RetryResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event is pending, processing or processed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/retry", data = "<body>")]
pub(crate) async fn retry(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    wakeup: Wakeup,
    body: Data<'_>,
) -> ApiResult<Json<RetryResponse>> {
    let request = read_request(body).await?;
    if let Some(id) = &request.event_id
        && (id.is_empty() || id.len() > 255)
    {
        return Err(ApiError::field("event_id", "must be a Stripe event id"));
    }
    let actor = Actor::user(&admin.0.user_id, &client);
    let now = app.clock.now_ms();
    let requeued = match &request.event_id {
        Some(id) => ops::replay(&app.db, id, &actor, now).await?,
        None => ops::replay_failed(&app.db, &actor, now).await?,
    };
    if requeued > 0 {
        wakeup.wake();
    }
    Ok(Json(RetryResponse { requeued }))
}
