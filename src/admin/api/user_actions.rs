//! `POST users/{id}/disable`, `enable`, `role`, `unlock`, `verify-email` and
//! `mfa-reset`: each answers the user as they are after it, and audits itself.

use rocket::serde::json::Json;
use rocket::{State, post};
use rusqlite::Transaction;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{optional_reason, reason, user_path};
use crate::accounts::ops::admin as ops;
use crate::admin::users::{UserDetail, detail};
use crate::auth::AdminUser;
use crate::auth::roles::Role;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::validate::Checks;
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::Actor;
use crate::platform::clock::Millis;
use crate::platform::ids::UserId;
use crate::state::App;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "chargeback fraud"}))]
pub struct DisableRequest {
    /// Why (kept in the audit log).
    #[schema(
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: String,
}

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "cleared by support"}))]
pub struct EnableRequest {
    #[schema(max_length = 500, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "admin"}))]
pub struct RoleRequest {
    pub role: Role,
}

/// A body with nothing in it: `{}` (a JSON object without fields; nothing else).
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({}))]
pub struct EmptyRequest {}

impl<'de> Deserialize<'de> for EmptyRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        match map.keys().next() {
            Some(key) => Err(serde::de::Error::custom(format!(
                "unknown field `{key}`, expected an empty object"
            ))),
            None => Ok(EmptyRequest {}),
        }
    }
}

/// Runs `op` on user `id` for `admin`, then reads the user back, in one transaction.
pub(super) async fn act(
    app: &App,
    admin: &AdminUser,
    client: &ClientInfo,
    id: &str,
    op: impl FnOnce(&Transaction<'_>, &UserId, &UserId, &Actor, Millis) -> ApiResult<()>
    + Send
    + 'static,
) -> ApiResult<Json<UserDetail>> {
    let id = user_path(id)?;
    let admin_id = admin.0.user_id.clone();
    let actor = Actor::user(&admin_id, client);
    let now = app.clock.now_ms();
    let user = app
        .db
        .write(move |tx| {
            op(tx, &id, &admin_id, &actor, now)?;
            detail(tx, &id, now)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(Json(user))
}

/// Disable an account: every API and console session of it ends at once. Never your
/// own account nor the last active admin.
#[utoipa::path(post, path = "/api/admin/users/{id}/disable", tag = "admin", security(("bearer" = [])), request_body = DisableRequest,
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "Disabled", body = UserDetail),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (or, with the console cookie, not a same-origin JSON request)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already disabled, your own account, or the last admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or bad reason", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/disable", data = "<body>")]
pub async fn disable(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, DisableRequest>,
) -> ApiResult<Json<UserDetail>> {
    let body = parse_body(body)?;
    let mut checks = Checks::default();
    let why = checks.field("reason", reason(&body.reason));
    let why = checks.finish(why)?;
    act(
        app,
        &admin,
        &client,
        id,
        move |tx, id, admin, actor, now| ops::disable(tx, id, &why, admin, actor, now),
    )
    .await
}

/// Enable a disabled account (its ended sessions stay ended).
#[utoipa::path(post, path = "/api/admin/users/{id}/enable", tag = "admin", security(("bearer" = [])), request_body = EnableRequest,
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "Enabled", body = UserDetail),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad reason", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/enable", data = "<body>")]
pub async fn enable(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, EnableRequest>,
) -> ApiResult<Json<UserDetail>> {
    let body = parse_body(body)?;
    let mut checks = Checks::default();
    let why = checks.field("reason", optional_reason(body.reason.as_deref()));
    let why = checks.finish(why)?;
    act(app, &admin, &client, id, move |tx, id, _, actor, now| {
        ops::enable(tx, id, why.as_deref(), actor, now)
    })
    .await
}

/// Make an account a user or an admin. Never your own, never the last active admin's;
/// a demoted admin loses the console at once.
#[utoipa::path(post, path = "/api/admin/users/{id}/role", tag = "admin", security(("bearer" = [])), request_body = RoleRequest,
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "The role is set", body = UserDetail),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Your own account, or the last admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not user or admin", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/role", data = "<body>")]
pub async fn set_role(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, RoleRequest>,
) -> ApiResult<Json<UserDetail>> {
    let role = parse_body(body)?.role;
    act(
        app,
        &admin,
        &client,
        id,
        move |tx, id, admin, actor, now| ops::set_role(tx, id, role, admin, actor, now),
    )
    .await
}

/// Clear the failed-login lockout of an account.
#[utoipa::path(post, path = "/api/admin/users/{id}/unlock", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "Unlocked", body = UserDetail),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/unlock", data = "<body>")]
pub async fn unlock(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Json<UserDetail>> {
    parse_body(body)?;
    act(app, &admin, &client, id, |tx, id, _, actor, now| {
        ops::unlock(tx, id, actor, now)
    })
    .await
}

/// Mark an account's email address verified.
#[utoipa::path(post, path = "/api/admin/users/{id}/verify-email", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "Verified", body = UserDetail),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/verify-email", data = "<body>")]
pub async fn verify_email(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Json<UserDetail>> {
    parse_body(body)?;
    act(app, &admin, &client, id, |tx, id, _, actor, now| {
        ops::verify_email(tx, id, actor, now)
    })
    .await
}

/// Turn off another account's two-factor sign-in, for an owner who lost both the
/// authenticator and the recovery codes (what `audiostudio users mfa-reset` does): they
/// sign in with the password alone until they enrol again. Audited (`auth.mfa_reset`)
/// and told to the owner by email; their sessions stay. Never your own account.
#[utoipa::path(post, path = "/api/admin/users/{id}/mfa-reset", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "Reset: two-factor sign-in is off", body = UserDetail),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (or, with the console cookie, not a same-origin JSON request)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor sign-in is not on, or it is your own account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/users/<id>/mfa-reset", data = "<body>")]
pub async fn mfa_reset(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<Json<UserDetail>> {
    parse_body(body)?;
    let base_url = app.settings.server.public_base_url.clone();
    let user = act(
        app,
        &admin,
        &client,
        id,
        move |tx, id, admin, actor, now| ops::reset_mfa(tx, id, &base_url, admin, actor, now),
    )
    .await?;
    app.mail_wakeup.notify_one();
    Ok(user)
}
