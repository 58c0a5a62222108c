//! `POST /api/auth/refresh`: exchange a refresh token for a new token pair.

use rocket::serde::json::Json;
use rocket::{State, post};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{AuthResponse, auth_response, secs_to_ms, session_lifetime};
use crate::accounts::store::{self, UserView};
use crate::auth::sessions::{self, NewSession, Refresh, Rotation};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::state::App;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchange a refresh token for a new access token and refresh token.
///
/// Each refresh token works once. Within a few seconds of grace (concurrent tabs) an
/// exchange is repeatable and answers the same successor refresh token; presenting an
/// exchanged token later revokes the whole session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = AuthResponse),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/refresh", data = "<body>")]
pub async fn refresh(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, RefreshRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let (grace_ms, lifetime) = (
        secs_to_ms(app.settings.auth.refresh_reuse_grace_secs),
        session_lifetime(app),
    );
    let jwt = app.jwt.clone();
    // Every outcome commits (a reuse revokes the session and audits it); only then does
    // it become the answer.
    let rotated = app
        .db
        .write(move |tx| {
            let rotation = Rotation {
                grace_ms,
                lifetime,
                key: jwt.derived(),
            };
            match sessions::rotate(tx, &body.refresh_token, now, &rotation)? {
                Refresh::Rotated {
                    session_id,
                    user_id,
                    refresh_token,
                } => {
                    let session = NewSession {
                        session_id,
                        refresh_token,
                    };
                    let user = store::find_user(tx, &user_id)?;
                    Ok::<_, ApiError>(user.map(|user| (user, session)).ok_or_else(invalid))
                }
                Refresh::Reused {
                    session_id,
                    user_id,
                } => {
                    let event =
                        Event::new("auth.refresh_token_reused").target("session", &session_id);
                    audit::record(tx, now, &Actor::user(&user_id, &client), event)?;
                    Ok(Err(ApiError::Unauthorized(
                        "this refresh token was already used; the session has been revoked",
                    )))
                }
                Refresh::Invalid => Ok(Err(invalid())),
            }
        })
        .await?;
    let (user, session): (UserView, NewSession) = rotated?;
    Ok(Json(auth_response(app, user, session)?))
}

fn invalid() -> ApiError {
    ApiError::Unauthorized("the refresh token is invalid or expired")
}
