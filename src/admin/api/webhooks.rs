//! `GET webhooks`, `GET webhooks/{id}`, `POST webhooks/{id}/replay` and
//! `POST webhooks/replay-failed` (the CLI's `webhooks replay` runs the same operations).

use rocket::serde::json::Json;
use rocket::{State, get, post};
use serde::Serialize;
use utoipa::ToSchema;

use super::user_actions::EmptyRequest;
use super::{MAX_ID_LEN, MAX_PAGE};
use crate::admin::webhooks::{self as store, EventCursor, EventDetail, EventFilter, EventRow};
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::{Checks, line, one_of};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::Actor;
use crate::state::App;
use crate::webhooks::api::Wakeup;
use crate::webhooks::ops;

const STATUSES: &[&str] = &["pending", "processing", "processed", "ignored", "failed"];

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventRow>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Requeued {
    /// How many events are pending again.
    pub requeued: usize,
}

fn short(text: &str) -> Result<String, String> {
    line(text, MAX_ID_LEN).map(|()| text.to_owned())
}

/// Stored events, newest first, by status, type and object.
#[utoipa::path(get, path = "/api/admin/webhooks", tag = "admin", security(("bearer" = [])),
    params(
        ("status" = Option<String>, Query, pattern = "^(pending|processing|processed|ignored|failed)$", description = "pending, processing, processed, ignored or failed"),
        ("type" = Option<String>, Query, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", description = "An event type, e.g. invoice.paid"),
        ("object" = Option<String>, Query, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", description = "The id of the event's object"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[+]?[0-9]{1,18}_[!-~]{1,255}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of events", body = EventPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/webhooks?<status>&<type>&<object>&<limit>&<cursor>")]
pub async fn list(
    app: &State<App>,
    _admin: AdminUser,
    status: Option<&str>,
    r#type: Option<&str>,
    object: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> ApiResult<Json<EventPage>> {
    let mut checks = Checks::default();
    let status = checks.field("status", status.map(|s| one_of(s, STATUSES)).transpose());
    let event_type = checks.field("type", r#type.map(short).transpose());
    let object_id = checks.field("object", object.map(short).transpose());
    let (status, event_type, object_id) = checks.finish((status, event_type, object_id))?;
    let filter = EventFilter {
        status: status.map(str::to_owned),
        event_type,
        object_id,
    };
    let page = PageRequest::<EventCursor>::parse(limit, cursor, 50, MAX_PAGE)?;
    let (fetch, before) = (page.fetch(), page.cursor.clone());
    let rows = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::page(c, &filter, before.as_ref(), fetch)?))
        .await?;
    let page = Page::from_rows(rows, page.limit, EventRow::cursor);
    Ok(Json(EventPage {
        events: page.items,
        next_cursor: page.next_cursor,
    }))
}

async fn find(app: &App, id: String) -> ApiResult<EventDetail> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(ApiError::NotFound);
    }
    app.db
        .read(move |c| Ok::<_, ApiError>(store::one(c, &id)?))
        .await?
        .ok_or(ApiError::NotFound)
}

/// One event: its state, last error and payload.
#[utoipa::path(get, path = "/api/admin/webhooks/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The Stripe event id")),
    responses(
        (status = 200, description = "The event", body = EventDetail),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/webhooks/<id>")]
pub async fn detail(app: &State<App>, _admin: AdminUser, id: &str) -> ApiResult<Json<EventDetail>> {
    Ok(Json(find(app, id.to_owned()).await?))
}

/// Put one failed or ignored event back to pending with fresh attempts; audited.
#[utoipa::path(post, path = "/api/admin/webhooks/{id}/replay", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    params(("id" = String, Path, description = "The Stripe event id")),
    responses(
        (status = 200, description = "Pending again", body = EventDetail),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not failed or ignored", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/webhooks/<id>/replay", data = "<body>")]
pub(crate) async fn replay(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    wakeup: Wakeup,
    id: &str,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Json<EventDetail>> {
    parse_body(body)?;
    find(app, id.to_owned()).await?;
    let actor = Actor::user(&admin.0.user_id, &client);
    ops::replay(&app.db, id, &actor, app.clock.now_ms()).await?;
    wakeup.wake();
    Ok(Json(find(app, id.to_owned()).await?))
}

/// Put every failed event back to pending; audited.
#[utoipa::path(post, path = "/api/admin/webhooks/replay-failed", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    responses(
        (status = 200, description = "Requeued", body = Requeued),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/webhooks/replay-failed", data = "<body>")]
pub(crate) async fn replay_failed(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    wakeup: Wakeup,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Json<Requeued>> {
    parse_body(body)?;
    let actor = Actor::user(&admin.0.user_id, &client);
    let requeued = ops::replay_failed(&app.db, &actor, app.clock.now_ms()).await?;
    if requeued > 0 {
        wakeup.wake();
    }
    Ok(Json(Requeued { requeued }))
}
