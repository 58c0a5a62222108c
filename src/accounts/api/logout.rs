//! `POST /api/auth/logout` and `/logout-all`: end this session, or every session.

use rocket::response::status::NoContent;
use rocket::serde::json::Json;
use rocket::{State, post};

use super::{RevokedResponse, end_sessions};
use crate::auth::AuthUser;
use crate::auth::sessions::{self, RevokeReason};
use crate::http::ClientInfo;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::audit::{self, Actor, Event};
use crate::state::App;

/// End the current session; its access token stops working at once.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/logout")]
pub async fn logout(app: &State<App>, user: AuthUser, client: ClientInfo) -> ApiResult<NoContent> {
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            sessions::revoke(
                tx,
                &user.user_id,
                &user.session_id,
                RevokeReason::Logout,
                now,
            )?;
            let event = Event::new("auth.logout").target("session", &user.session_id);
            let actor = Actor::user(&user.user_id, &client);
            Ok::<_, ApiError>(audit::record(tx, now, &actor, event)?)
        })
        .await?;
    Ok(NoContent)
}

/// End every session of the caller, this one included.
#[utoipa::path(post, path = "/api/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "All sessions revoked", body = RevokedResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/logout-all")]
pub async fn logout_all(
    app: &State<App>,
    user: AuthUser,
    client: ClientInfo,
) -> ApiResult<Json<RevokedResponse>> {
    let now = app.clock.now_ms();
    let count = app
        .db
        .write(move |tx| {
            let actor = Actor::user(&user.user_id, &client);
            let (reason, action) = (RevokeReason::LogoutAll, "auth.logout_all");
            let count = end_sessions(tx, &user.user_id, None, reason, action, &actor, now)?;
            Ok::<_, ApiError>(count)
        })
        .await?;
    Ok(Json(RevokedResponse {
        message: "every session has been logged out".into(),
        sessions_revoked: count,
    }))
}
