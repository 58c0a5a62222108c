//! `POST users/{id}/resend-verification` and `users/{id}/password-reset`: emails to the
//! account's owner (an admin never sets a password).

use rocket::http::Status;
use rocket::response::status::Custom;
use rocket::serde::json::Json;
use rocket::{State, post};
use serde::Serialize;
use utoipa::ToSchema;

use super::user_actions::EmptyRequest;
use super::user_path;
use crate::accounts::ops::admin as ops;
use crate::auth::AdminUser;
use crate::http::error::{ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::Actor;
use crate::state::App;

#[derive(Debug, Serialize, ToSchema)]
pub struct SentResponse {
    /// Always true: the email is queued.
    pub sent: bool,
}

#[derive(Clone, Copy)]
enum Mail {
    Verification,
    PasswordReset,
}

async fn send(
    app: &App,
    admin: &AdminUser,
    client: &ClientInfo,
    id: &str,
    mail: Mail,
) -> ApiResult<Custom<Json<SentResponse>>> {
    let id = user_path(id)?;
    let actor = Actor::user(&admin.0.user_id, client);
    let (now, base_url) = (
        app.clock.now_ms(),
        app.settings.server.public_base_url.clone(),
    );
    app.db
        .write(move |tx| match mail {
            Mail::Verification => ops::resend_verification(tx, &id, &base_url, &actor, now),
            Mail::PasswordReset => ops::send_password_reset(tx, &id, &base_url, &actor, now),
        })
        .await?;
    app.mail_wakeup.notify_one();
    Ok(Custom(Status::Accepted, Json(SentResponse { sent: true })))
}

/// Send the account a new verification email.
#[utoipa::path(post, path = "/api/admin/users/{id}/resend-verification", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 202, description = "Queued", body = SentResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already verified", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/resend-verification", data = "<body>")]
pub async fn resend_verification(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Custom<Json<SentResponse>>> {
    parse_body(body)?;
    send(app, &admin, &client, id, Mail::Verification).await
}

/// Send the account's owner a password-reset link.
#[utoipa::path(post, path = "/api/admin/users/{id}/password-reset", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 202, description = "Queued", body = SentResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/password-reset", data = "<body>")]
pub async fn password_reset(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Custom<Json<SentResponse>>> {
    parse_body(body)?;
    send(app, &admin, &client, id, Mail::PasswordReset).await
}
