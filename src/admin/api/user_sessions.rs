//! `GET users/{id}/sessions`, `POST users/{id}/sessions/{sid}/revoke`,
//! `POST users/{id}/sessions/revoke-all` and `GET users/{id}/activity`.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{State, get, post};
use serde::Serialize;
use utoipa::ToSchema;

use super::user_actions::EmptyRequest;
use super::{MAX_ID_LEN, MAX_PAGE, user_path};
use crate::accounts::ops::admin as ops;
use crate::admin::audit::{self, AuditFilter, AuditRow};
use crate::admin::store::{self, AdminSessionView};
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::{Page, PageRequest};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::Actor;
use crate::platform::ids::SessionId;
use crate::state::App;

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AdminSessionsResponse)]
pub struct SessionsResponse {
    pub sessions: Vec<AdminSessionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedCount {
    /// How many sessions ended.
    pub revoked: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditRow>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The account's live API sessions, newest first.
#[utoipa::path(get, path = "/api/admin/users/{id}/sessions", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "Live sessions", body = SessionsResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/<id>/sessions")]
pub async fn list_sessions(
    app: &State<App>,
    _admin: AdminUser,
    id: &str,
) -> ApiResult<Json<SessionsResponse>> {
    let id = user_path(id)?;
    let now = app.clock.now_ms();
    let sessions = app
        .db
        .read(move |c| {
            store::user_row_of(c, &id, now)?.ok_or(ApiError::NotFound)?;
            Ok::<_, ApiError>(store::live_sessions(c, &id, now)?)
        })
        .await?;
    Ok(Json(SessionsResponse { sessions }))
}

/// End one API session of the account (its access token stops working at once).
#[utoipa::path(post, path = "/api/admin/users/{id}/sessions/{sid}/revoke", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    params(("id" = String, Path, description = "The user id"), ("sid" = String, Path, description = "The session id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such live session of this user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/sessions/<sid>/revoke", data = "<body>")]
pub async fn revoke_session(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    sid: &str,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Status> {
    parse_body(body)?;
    let id = user_path(id)?;
    if sid.len() > MAX_ID_LEN {
        return Err(ApiError::NotFound);
    }
    let sid = SessionId::from(sid);
    let actor = Actor::user(&admin.0.user_id, &client);
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| ops::revoke_session(tx, &id, &sid, &actor, now))
        .await?;
    Ok(Status::NoContent)
}

/// End every API session of the account.
#[utoipa::path(post, path = "/api/admin/users/{id}/sessions/revoke-all", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "Ended", body = RevokedCount),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/sessions/revoke-all", data = "<body>")]
pub async fn revoke_all_sessions(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Json<RevokedCount>> {
    parse_body(body)?;
    let id = user_path(id)?;
    let actor = Actor::user(&admin.0.user_id, &client);
    let now = app.clock.now_ms();
    let revoked = app
        .db
        .write(move |tx| ops::revoke_all_sessions(tx, &id, &actor, now))
        .await?;
    Ok(Json(RevokedCount { revoked }))
}

/// The audit rows by or about the account, newest first.
#[utoipa::path(get, path = "/api/admin/users/{id}/activity", tag = "admin", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The user id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[+]?0*[1-9][0-9]{0,17}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of audit rows", body = AuditPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/<id>/activity?<limit>&<cursor>")]
pub async fn activity(
    app: &State<App>,
    _admin: AdminUser,
    id: &str,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> ApiResult<Json<AuditPage>> {
    let id = user_path(id)?;
    let page = PageRequest::<i64>::parse(limit, cursor, 50, MAX_PAGE)?;
    let (fetch, before, now) = (page.fetch(), page.cursor, app.clock.now_ms());
    let rows = app
        .db
        .read(move |c| {
            store::user_row_of(c, &id, now)?.ok_or(ApiError::NotFound)?;
            let filter = AuditFilter {
                user: Some(id.to_string()),
                ..AuditFilter::default()
            };
            Ok::<_, ApiError>(audit::page(c, &filter, before, fetch)?)
        })
        .await?;
    let page = Page::from_rows(rows, page.limit, |r| r.id);
    Ok(Json(AuditPage {
        entries: page.items,
        next_cursor: page.next_cursor,
    }))
}
