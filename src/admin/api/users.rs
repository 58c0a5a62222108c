//! `GET users` (search and filters) and `GET users/{id}` (one user in detail).

use rocket::serde::json::Json;
use rocket::{State, get};
use serde::Serialize;
use utoipa::ToSchema;

use super::{MAX_PAGE, user_path};
use crate::accounts::validate::MAX_EMAIL_LEN;
use crate::admin::store::{self, UserFilter, UserRow};
use crate::admin::users::{self as detail, UserDetail};
use crate::auth::AdminUser;
use crate::auth::roles::{Role, UserStatus};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::{Page, PageRequest, page_limit};
use crate::http::validate::{Checks, line};
use crate::state::App;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserRow>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

fn search(text: &str) -> Result<String, String> {
    line(text, MAX_EMAIL_LEN).map(|()| text.to_owned())
}

/// The filters, or the 422 naming every bad one.
fn filter(
    q: Option<&str>,
    role: Option<&str>,
    status: Option<&str>,
    verified: Option<&str>,
    locked: Option<&str>,
) -> ApiResult<UserFilter> {
    let mut checks = Checks::default();
    let q = checks.field("q", q.map(search).transpose());
    let role = checks.field(
        "role",
        role.map(|r| {
            r.parse::<Role>()
                .map_err(|_| "must be user or admin".to_owned())
        })
        .transpose(),
    );
    let status = checks.field(
        "status",
        status
            .map(|s| {
                s.parse::<UserStatus>()
                    .map_err(|_| "must be active or disabled".to_owned())
            })
            .transpose(),
    );
    let verified = checks.field("verified", verified.map(boolean).transpose());
    let locked = checks.field("locked", locked.map(boolean).transpose());
    let (q, role, status, verified, locked) = checks.finish((q, role, status, verified, locked))?;
    Ok(UserFilter {
        q: q.filter(|q| !q.is_empty()),
        role,
        status,
        verified,
        locked,
    })
}

/// Users, newest first, searched and filtered (admins only).
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])),
    params(
        ("q" = Option<String>, Query, max_length = 254, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", description = "Part of the email or display name, or an exact user id"),
        ("email" = Option<String>, Query, max_length = 254, description = "Part of the email (older name of `q`)"),
        ("role" = Option<String>, Query, pattern = "^(user|admin)$", description = "user or admin"),
        ("status" = Option<String>, Query, pattern = "^(active|disabled)$", description = "active or disabled"),
        ("verified" = Option<bool>, Query, description = "Only users whose email is (true) or is not (false) verified"),
        ("locked" = Option<bool>, Query, description = "Only users locked (true) or not locked (false) by failed logins"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1 to 200 (default 50)"),
        ("cursor" = Option<String>, Query, max_length = 64, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of users", body = UserPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(clippy::too_many_arguments)]
#[get("/users?<q>&<email>&<role>&<status>&<verified>&<locked>&<limit>&<cursor>")]
pub async fn list_users(
    app: &State<App>,
    _admin: AdminUser,
    q: Option<&str>,
    email: Option<&str>,
    role: Option<&str>,
    status: Option<&str>,
    verified: Option<&str>,
    locked: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> ApiResult<Json<UserPage>> {
    page_limit(limit, 50, MAX_PAGE)?;
    // An over-long email or cursor has always been answered as a too-long `email`.
    if email.is_some_and(|e| e.len() > MAX_EMAIL_LEN) || cursor.is_some_and(|c| c.len() > 64) {
        return Err(ApiError::field("email", "is too long"));
    }
    let filter = filter(q.or(email), role, status, verified, locked)?;
    let page = PageRequest::<String>::parse(limit, cursor, 50, MAX_PAGE)?;
    let (fetch, limit, now) = (page.fetch(), page.limit, app.clock.now_ms());
    let rows = app
        .db
        .read(move |c| {
            let rows = store::user_page(c, &filter, page.cursor.as_deref(), fetch, now)?;
            Ok::<_, ApiError>(rows)
        })
        .await?;
    let page = Page::from_rows(rows, limit, |user| user.id.to_string());
    Ok(Json(UserPage {
        users: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One user: the row of the list, the lockout counter, the plan and the avatar.
#[utoipa::path(get, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user", body = UserDetail),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/users/<id>")]
pub async fn get_user(
    app: &State<App>,
    _admin: AdminUser,
    id: &str,
) -> ApiResult<Json<UserDetail>> {
    let id = user_path(id)?;
    let now = app.clock.now_ms();
    let user = app
        .db
        .read(move |c| Ok::<_, ApiError>(detail::detail(c, &id, now)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(user))
}
