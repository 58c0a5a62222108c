//! The admin API (`/api/admin`) and the embedded admin UI (`/admin`).

use std::borrow::Cow;
use std::path::PathBuf;

use rocket::http::ContentType;
use rocket::serde::json::Json;
use rocket::{Build, Rocket, State, get, routes};
use rust_embed::RustEmbed;
use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::users::{self, UserView};
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::state::App;

/// Mounts the admin API under `/api/admin` and the console under `/admin`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket
        .mount("/api/admin", routes![list_users, list_shortfalls])
        .mount("/admin", routes![ui_index, ui_asset])
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

const MAX_PAGE: u32 = 200;

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
async fn list_users(
    app: &State<App>,
    _admin: AdminUser,
    limit: Option<&str>,
    cursor: Option<String>,
    email: Option<String>,
) -> ApiResult<Json<UserPage>> {
    let limit = crate::http::pagination::page_limit(limit, 50, MAX_PAGE)?;
    if email.as_ref().is_some_and(|e| e.len() > 254)
        || cursor.as_ref().is_some_and(|c| c.len() > 64)
    {
        return Err(ApiError::field("email", "is too long"));
    }
    let mut users = app
        .db
        .read(move |c| {
            Ok::<_, ApiError>(users::page(
                c,
                email.as_deref().filter(|e| !e.is_empty()),
                cursor.as_deref(),
                limit + 1,
            )?)
        })
        .await?;
    let next_cursor = if users.len() > limit as usize {
        users.truncate(limit as usize);
        users.last().map(|u| u.id.clone())
    } else {
        None
    };
    Ok(Json(UserPage { users, next_cursor }))
}

/// Tokens a refund could not claw back because the user had already spent them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Shortfall {
    pub user_id: String,
    pub email: String,
    /// What was refunded, e.g. `refund:ch_...`.
    pub reference: String,
    pub amount: i64,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShortfallsResponse {
    pub shortfalls: Vec<Shortfall>,
    /// Sum of every recorded shortfall.
    pub total: i64,
}

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
async fn list_shortfalls(
    app: &State<App>,
    _admin: AdminUser,
    limit: Option<&str>,
) -> ApiResult<Json<ShortfallsResponse>> {
    let limit = crate::http::pagination::page_limit(limit, 50, MAX_PAGE)?;
    let response = app
        .db
        .read(move |c| {
            let mut stmt = c.prepare(
                "SELECT s.user_id, u.email, s.reference, s.amount, s.created_at
                 FROM token_shortfalls s JOIN users u ON u.id = s.user_id ORDER BY s.id DESC LIMIT ?1",
            )?;
            let shortfalls = stmt
                .query_map([limit], |r| {
                    Ok(Shortfall {
                        user_id: r.get(0)?,
                        email: r.get(1)?,
                        reference: r.get(2)?,
                        amount: r.get(3)?,
                        created_at: crate::platform::clock::rfc3339(r.get(4)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let total: i64 = c.query_row("SELECT COALESCE(SUM(amount), 0) FROM token_shortfalls", [], |r| r.get(0))?;
            Ok::<_, ApiError>(ShortfallsResponse { shortfalls, total })
        })
        .await?;
    Ok(Json(response))
}

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

fn asset(path: &str) -> Option<(ContentType, Cow<'static, [u8]>)> {
    let file = Assets::get(path)?;
    let content_type = path
        .rsplit_once('.')
        .and_then(|(_, ext)| ContentType::from_extension(ext))
        .unwrap_or(ContentType::Binary);
    Some((content_type, file.data))
}

#[get("/")]
fn ui_index() -> Option<(ContentType, Cow<'static, [u8]>)> {
    asset("index.html")
}

#[get("/<path..>", rank = 2)]
fn ui_asset(path: PathBuf) -> Option<(ContentType, Cow<'static, [u8]>)> {
    asset(path.to_str()?).or_else(|| asset("index.html"))
}
