//! `GET /api/auth/sessions` and `DELETE /api/auth/sessions/{id}`: the caller's devices.

use rocket::response::status::NoContent;
use rocket::serde::json::Json;
use rocket::{State, delete, get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::auth::sessions::{self, RevokeReason, SessionView};
use crate::http::ClientInfo;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::ids::SessionId;
use crate::state::App;

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionView>,
}

/// The caller's active sessions, newest first.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Active sessions", body = SessionsResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/sessions")]
pub async fn list_sessions(app: &State<App>, user: AuthUser) -> ApiResult<Json<SessionsResponse>> {
    let now = app.clock.now_ms();
    let sessions = app
        .db
        .read(move |c| {
            let sessions = sessions::list_active(c, &user.user_id, &user.session_id, now)?;
            Ok::<_, ApiError>(sessions)
        })
        .await?;
    Ok(Json(SessionsResponse { sessions }))
}

/// Revoke one of the caller's sessions (log out another device).
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path, description = "The session id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active session of the caller", body = Problem, content_type = "application/problem+json"),
    ))]
#[delete("/sessions/<id>")]
pub async fn revoke_session(
    app: &State<App>,
    user: AuthUser,
    client: ClientInfo,
    id: &str,
) -> ApiResult<NoContent> {
    let now = app.clock.now_ms();
    let id = SessionId::from(id);
    app.db
        .write(move |tx| {
            if !sessions::revoke(tx, &user.user_id, &id, RevokeReason::RevokedByUser, now)? {
                return Err(ApiError::NotFound);
            }
            let event = Event::new("auth.session_revoked").target("session", &id);
            Ok(audit::record(
                tx,
                now,
                &Actor::user(&user.user_id, &client),
                event,
            )?)
        })
        .await?;
    Ok(NoContent)
}
