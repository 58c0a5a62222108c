//! `GET token-shortfalls`: refunds that could not claw back spent tokens.

use rocket::serde::json::Json;
use rocket::{State, get};

use super::{MAX_PAGE, user_id_param};
use crate::admin::store::{self, ShortfallsResponse};
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::{Page, PageRequest};
use crate::state::App;

/// Refund shortfalls, newest first (admins only): tokens already spent when their purchase was refunded.
#[utoipa::path(get, path = "/api/admin/token-shortfalls", tag = "admin", security(("bearer" = [])),
    params(
        ("user_id" = Option<String>, Query, description = "Only this user's shortfalls (and total)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[+]?0*[1-9][0-9]{0,17}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "Shortfalls", body = ShortfallsResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit, cursor or user_id", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/token-shortfalls?<user_id>&<limit>&<cursor>")]
pub async fn list_shortfalls(
    app: &State<App>,
    _admin: AdminUser,
    user_id: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> ApiResult<Json<ShortfallsResponse>> {
    let page = PageRequest::<i64>::parse(limit, cursor, 50, MAX_PAGE)?;
    let user_id = user_id.map(user_id_param).transpose()?;
    let (fetch, before) = (page.fetch(), page.cursor);
    let (rows, total) = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::shortfalls(c, user_id.as_deref(), before, fetch)?))
        .await?;
    let page = Page::from_rows(rows, page.limit, |s| s.id);
    Ok(Json(ShortfallsResponse {
        shortfalls: page.items,
        total,
        next_cursor: page.next_cursor,
    }))
}
