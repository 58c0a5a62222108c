//! `GET audit` (filtered browse), `GET audit/{id}` (one row with its hashes) and
//! `POST audit/verify` (the whole chain, against the head `audiostudio audit verify` keeps).

use rocket::serde::json::Json;
use rocket::{State, get, post};
use serde::Serialize;
use utoipa::ToSchema;

use super::user_actions::EmptyRequest;
use super::user_sessions::AuditPage;
use super::{MAX_ID_LEN, MAX_PAGE};
use crate::admin::audit::{self, AuditDetail, AuditFilter};
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::{Checks, line, rfc3339_millis};
use crate::http::{JsonBody, parse_body};
use crate::platform::audit::{Head, Verification, verify};
use crate::state::App;

/// Where `audiostudio audit verify` keeps the head of the last intact chain.
const HEAD_FILE: &str = "audit_head";

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    pub intact: bool,
    /// Rows verified (of an intact chain).
    pub rows: u64,
    pub head_id: Option<i64>,
    pub head_hash: Option<String>,
    /// What is wrong, when the chain is broken.
    pub problem: Option<String>,
}

fn text(value: &str) -> Result<String, String> {
    line(value, MAX_ID_LEN).map(|()| value.to_owned())
}

/// An RFC 3339 time; a `+` of an offset left unencoded in the query arrives as a space.
fn time(value: &str) -> Result<i64, String> {
    rfc3339_millis(value)
        .or_else(|| rfc3339_millis(&value.replace(' ', "+")))
        .ok_or_else(|| "must be an RFC 3339 time such as 2026-01-31T00:00:00Z".into())
}

/// Audit rows, newest first, filtered.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", security(("bearer" = [])),
    params(
        ("actor" = Option<String>, Query, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", description = "Rows by this user id"),
        ("target" = Option<String>, Query, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", description = "Rows about this id"),
        ("action" = Option<String>, Query, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", description = "An action prefix, e.g. `admin.`"),
        ("from" = Option<String>, Query, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,9})?(Z|[+ -]([01][0-9]|2[0-3]):[0-5][0-9])$", description = "RFC 3339: rows at or after"),
        ("to" = Option<String>, Query, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,9})?(Z|[+ -]([01][0-9]|2[0-3]):[0-5][0-9])$", description = "RFC 3339: rows before"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[+]?0*[1-9][0-9]{0,17}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of rows", body = AuditPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(clippy::too_many_arguments)]
#[get("/audit?<actor>&<target>&<action>&<from>&<to>&<limit>&<cursor>")]
pub async fn list(
    app: &State<App>,
    _admin: AdminUser,
    actor: Option<&str>,
    target: Option<&str>,
    action: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> ApiResult<Json<AuditPage>> {
    let mut checks = Checks::default();
    let actor = checks.field("actor", actor.map(text).transpose());
    let target = checks.field("target", target.map(text).transpose());
    let action = checks.field("action", action.map(text).transpose());
    let from = checks.field("from", from.map(time).transpose());
    let to = checks.field("to", to.map(time).transpose());
    let (actor, target, action, from, to) = checks.finish((actor, target, action, from, to))?;
    let filter = AuditFilter {
        actor,
        target,
        user: None,
        action,
        from,
        to,
    };
    let page = PageRequest::<i64>::parse(limit, cursor, 50, MAX_PAGE)?;
    let (fetch, before) = (page.fetch(), page.cursor);
    let rows = app
        .db
        .read(move |c| Ok::<_, ApiError>(audit::page(c, &filter, before, fetch)?))
        .await?;
    let page = Page::from_rows(rows, page.limit, |r| r.id);
    Ok(Json(AuditPage {
        entries: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One audit row with its hash and the previous row's.
#[utoipa::path(get, path = "/api/admin/audit/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The row id")),
    responses(
        (status = 200, description = "The row", body = AuditDetail),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such row", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not a 64-bit integer", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/audit/<id>")]
pub async fn one(app: &State<App>, _admin: AdminUser, id: i64) -> ApiResult<Json<AuditDetail>> {
    let row = app
        .db
        .read(move |c| Ok::<_, ApiError>(audit::one(c, id)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(row))
}

/// The head kept by the last `audiostudio audit verify`, if there is a readable one.
fn kept_head(app: &App) -> Option<Head> {
    let text = std::fs::read_to_string(app.settings.storage.data_dir.join(HEAD_FILE)).ok()?;
    let (id, hash) = text.trim().split_once(' ')?;
    Some(Head {
        id: id.parse().ok()?,
        hash: hash.to_owned(),
    })
}

/// Recompute the whole hash chain (and check it still reaches the head the CLI kept).
#[utoipa::path(post, path = "/api/admin/audit/verify", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    responses(
        (status = 200, description = "The verdict", body = VerifyResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/audit/verify", data = "<body>")]
pub async fn verify_chain(
    app: &State<App>,
    _admin: AdminUser,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Json<VerifyResponse>> {
    parse_body(body)?;
    let kept = kept_head(app);
    let outcome = app
        .db
        .read(move |c| Ok::<_, ApiError>(verify(c, kept.as_ref())?))
        .await?;
    Ok(Json(match outcome {
        Verification::Intact { rows, head } => VerifyResponse {
            intact: true,
            rows,
            head_id: head.as_ref().map(|h| h.id),
            head_hash: head.map(|h| h.hash),
            problem: None,
        },
        Verification::Broken { row_id, reason } => VerifyResponse {
            intact: false,
            rows: 0,
            head_id: None,
            head_hash: None,
            problem: Some(format!("row {row_id}: {reason}")),
        },
    }))
}
