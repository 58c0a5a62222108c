//! `GET claims` (the review queue), `POST claims/{id}/approve` and `claims/{id}/reject`.

use rocket::serde::json::Json;
use rocket::{State, get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::user_actions::EmptyRequest;
use super::{MAX_PAGE, reason};
use crate::admin::claims::{self, QueueClaim, QueueCursor};
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::{Checks, one_of};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::Actor;
use crate::platform::ids::ClaimId;
use crate::state::App;
use crate::tokens::social::MAX_ID;
use crate::tokens::social::claims::{Decision, review};

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuePage {
    pub claims: Vec<QueueClaim>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "the proof link shows someone else's account"}))]
pub struct RejectRequest {
    #[schema(
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: String,
}

/// The review queue: pending claims first (oldest first), then reviewed ones (newest first).
#[utoipa::path(get, path = "/api/admin/claims", tag = "admin", security(("bearer" = [])),
    params(
        ("status" = Option<String>, Query, pattern = "^(pending|approved|rejected)$", description = "pending, approved or rejected; absent: all"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[+]?0*[01]_[+-]?[0-9]{1,18}_[!-~]{1,128}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of claims", body = QueuePage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad status, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/claims?<status>&<limit>&<cursor>")]
pub async fn queue(
    app: &State<App>,
    _admin: AdminUser,
    status: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> ApiResult<Json<QueuePage>> {
    let mut checks = Checks::default();
    let status = checks.field(
        "status",
        status
            .map(|s| one_of(s, &["pending", "approved", "rejected"]))
            .transpose(),
    );
    let status = checks.finish(status)?;
    let page = PageRequest::<QueueCursor>::parse(limit, cursor, 50, MAX_PAGE)?;
    let (now, cap, fetch) = (
        app.clock.now_ms(),
        app.settings.tokens.social_daily_reward_cap,
        page.fetch(),
    );
    let after = page.cursor.clone();
    let rows = app
        .db
        .read(move |c| Ok::<_, ApiError>(claims::page(c, status, after.as_ref(), fetch, now, cap)?))
        .await?;
    let page = Page::from_rows(rows, page.limit, QueueClaim::cursor);
    Ok(Json(QueuePage {
        claims: page.items,
        next_cursor: page.next_cursor,
    }))
}

async fn decide(
    app: &App,
    admin: &AdminUser,
    client: &ClientInfo,
    id: &str,
    decision: Decision,
    why: Option<String>,
) -> ApiResult<Json<QueueClaim>> {
    if id.is_empty() || id.len() > MAX_ID {
        return Err(ApiError::NotFound);
    }
    let id = ClaimId::from(id);
    let admin_id = admin.0.user_id.clone();
    let actor = Actor::user(&admin_id, client);
    let (now, cap) = (
        app.clock.now_ms(),
        app.settings.tokens.social_daily_reward_cap,
    );
    let claim = app
        .db
        .write(move |tx| {
            review(tx, &id, decision, &admin_id, &actor, now)?;
            if let Some(why) = &why {
                claims::set_reason(tx, &id, why)?;
            }
            claims::one(tx, &id, now, cap)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(Json(claim))
}

/// Approve a pending claim: its reward is granted once; audited.
#[utoipa::path(post, path = "/api/admin/claims/{id}/approve", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    params(("id" = String, Path, description = "The claim id")),
    responses(
        (status = 200, description = "Approved and paid", body = QueueClaim),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such claim", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The claim is not pending", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/claims/<id>/approve", data = "<body>")]
pub async fn approve(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Json<QueueClaim>> {
    parse_body(body)?;
    decide(app, &admin, &client, id, Decision::Approve, None).await
}

/// Reject a pending claim with a reason: no tokens; audited.
#[utoipa::path(post, path = "/api/admin/claims/{id}/reject", tag = "admin", security(("bearer" = [])), request_body = RejectRequest,
    params(("id" = String, Path, description = "The claim id")),
    responses(
        (status = 200, description = "Rejected", body = QueueClaim),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such claim", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The claim is not pending", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or bad reason", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/claims/<id>/reject", data = "<body>")]
pub async fn reject(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, RejectRequest>,
) -> ApiResult<Json<QueueClaim>> {
    let body = parse_body(body)?;
    let mut checks = Checks::default();
    let why = checks.field("reason", reason(&body.reason));
    let why = checks.finish(why)?;
    decide(app, &admin, &client, id, Decision::Reject, Some(why)).await
}
