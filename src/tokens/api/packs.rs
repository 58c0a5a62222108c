//! `GET /api/tokens/packs`: the token packs on sale.

use rocket::serde::json::Json;
use rocket::{State, get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::state::App;
use crate::tokens::store::{self, PackView};

#[derive(Debug, Serialize, ToSchema)]
pub struct PacksResponse {
    pub packs: Vec<PackView>,
}

/// Token packs on sale.
#[utoipa::path(get, path = "/api/tokens/packs", tag = "tokens", security(("bearer" = [])),
    responses(
        (status = 200, description = "Active packs", body = PacksResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/packs")]
pub async fn list_packs(app: &State<App>, _user: AuthUser) -> ApiResult<Json<PacksResponse>> {
    let packs = app
        .db
        .read(|c| Ok::<_, ApiError>(store::active_packs(c)?))
        .await?;
    Ok(Json(PacksResponse { packs }))
}
