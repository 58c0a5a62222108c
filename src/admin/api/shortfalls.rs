//! `GET /api/admin/token-shortfalls`: refunds that could not claw back spent tokens.

use rocket::serde::json::Json;
use rocket::{State, get};

use super::MAX_PAGE;
use crate::admin::store::{self, ShortfallsResponse};
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::page_limit;
use crate::state::App;

/// Refund shortfalls, newest first (admins only): tokens already spent when their purchase was refunded.
#[utoipa::path(get, path = "/api/admin/token-shortfalls", tag = "admin", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query, description = "1 to 200, default 50")),
    responses(
        (status = 200, description = "Shortfalls", body = ShortfallsResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/token-shortfalls?<limit>")]
pub async fn list_shortfalls(
    app: &State<App>,
    _admin: AdminUser,
    limit: Option<&str>,
) -> ApiResult<Json<ShortfallsResponse>> {
    let limit = page_limit(limit, 50, MAX_PAGE)?;
    let response = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::shortfalls(c, limit)?))
        .await?;
    Ok(Json(response))
}
