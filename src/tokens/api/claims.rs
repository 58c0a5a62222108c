//! `/api/admin/social`: the review queue of social claims; approve or reject one.

use rocket::serde::json::Json;
use rocket::{State, get, post};
use serde::Serialize;
use utoipa::ToSchema;

use super::checks;
use crate::auth::AdminUser;
use crate::http::ClientInfo;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::{Page, PageRequest, page_limit};
use crate::http::validate::Checks;
use crate::platform::audit::Actor;
use crate::platform::ids::ClaimId;
use crate::state::App;
use crate::tokens::social::claims::{self, Decision};
use crate::tokens::social::{AdminClaimView, ClaimCursor, ClaimStatus, MAX_ID, store};

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimPage {
    pub claims: Vec<AdminClaimView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Claims for review, newest first (admins only).
#[utoipa::path(get, path = "/api/admin/social", tag = "admin", security(("bearer" = [])),
    params(
        ("status" = Option<String>, Query, pattern = "^(pending|approved|rejected)$", description = "pending, approved or rejected; absent: all"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[+]?[0-9]{1,18}_[!-~]{1,128}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of claims", body = ClaimPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad status, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/social?<status>&<limit>&<cursor>")]
pub async fn list_claims(
    app: &State<App>,
    _admin: AdminUser,
    status: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> ApiResult<Json<ClaimPage>> {
    // The first bad parameter answers, in this order: limit, status, cursor.
    page_limit(limit, 50, 200)?;
    let mut checks = Checks::default();
    let status = checks.field(
        "status",
        status.map(checks::variant::<ClaimStatus>).transpose(),
    );
    let status = checks.finish(status)?;
    let request = PageRequest::<ClaimCursor>::parse(limit, cursor, 50, 200)?;
    let fetch = request.fetch();
    let rows = app
        .db
        .read(move |c| {
            let rows = store::page_claims(c, status, request.cursor.as_ref(), fetch)?;
            Ok::<_, ApiError>(rows)
        })
        .await?;
    let page = Page::from_rows(rows, request.limit, AdminClaimView::cursor);
    Ok(Json(ClaimPage {
        claims: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Approve a pending claim: its reward lot is granted once; audited.
#[utoipa::path(post, path = "/api/admin/social/{id}/approve", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The claim id")),
    responses(
        (status = 200, description = "Approved and paid", body = AdminClaimView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such claim", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The claim is not pending", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/social/<id>/approve")]
pub async fn approve_claim(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
) -> ApiResult<Json<AdminClaimView>> {
    review(app, &admin, &client, id, Decision::Approve).await
}

/// Reject a pending claim: no tokens; audited.
#[utoipa::path(post, path = "/api/admin/social/{id}/reject", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The claim id")),
    responses(
        (status = 200, description = "Rejected", body = AdminClaimView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such claim", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The claim is not pending", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/social/<id>/reject")]
pub async fn reject_claim(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
) -> ApiResult<Json<AdminClaimView>> {
    review(app, &admin, &client, id, Decision::Reject).await
}

async fn review(
    app: &App,
    admin: &AdminUser,
    client: &ClientInfo,
    id: &str,
    decision: Decision,
) -> ApiResult<Json<AdminClaimView>> {
    if id.len() > MAX_ID {
        return Err(ApiError::NotFound);
    }
    let id = ClaimId::from(id);
    let admin_id = admin.0.user_id.clone();
    let actor = Actor::user(&admin_id, client);
    let now = app.clock.now_ms();
    let view = app
        .db
        .write(move |tx| claims::review(tx, &id, decision, &admin_id, &actor, now))
        .await?;
    Ok(Json(view))
}
