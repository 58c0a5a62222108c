//! `GET /api/admin/users`: every account, a page at a time.

use rocket::serde::json::Json;
use rocket::{State, get};
use serde::Serialize;
use utoipa::ToSchema;

use super::MAX_PAGE;
use crate::accounts::store::{self, UserView};
use crate::accounts::validate::MAX_EMAIL_LEN;
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::{Page, PageRequest};
use crate::state::App;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Users, newest first, optionally filtered by part of their email (admins only).
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("email" = Option<String>, Query, description = "Only users whose email contains this text"),
    ),
    responses(
        (status = 200, description = "One page of users", body = UserPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/users?<limit>&<cursor>&<email>")]
pub async fn list_users(
    app: &State<App>,
    _admin: AdminUser,
    limit: Option<&str>,
    cursor: Option<String>,
    email: Option<String>,
) -> ApiResult<Json<UserPage>> {
    // An over-long email or cursor has always been answered as a too-long `email`, after
    // the limit: the cursor is checked here so the answer stays the same.
    let too_long = email.as_ref().is_some_and(|e| e.len() > MAX_EMAIL_LEN)
        || cursor.as_ref().is_some_and(|c| c.len() > 64);
    let page =
        PageRequest::<String>::parse(limit, cursor.as_deref().filter(|_| !too_long), 50, MAX_PAGE)?;
    if too_long {
        return Err(ApiError::field("email", "is too long"));
    }
    let (fetch, limit) = (page.fetch(), page.limit);
    let rows = app
        .db
        .read(move |c| {
            let email = email.as_deref().filter(|e| !e.is_empty());
            Ok::<_, ApiError>(store::page(c, email, page.cursor.as_deref(), fetch)?)
        })
        .await?;
    let page = Page::from_rows(rows, limit, |user| user.id.to_string());
    Ok(Json(UserPage {
        users: page.items,
        next_cursor: page.next_cursor,
    }))
}
