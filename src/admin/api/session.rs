//! The console's sign-in under `/admin/api`: `POST login` (the API login's own path:
//! lockout, per-IP limit, argon2 off the executor, audit; admins only), `POST logout`,
//! `GET me`. The session is an opaque cookie; see `auth::console`.

use rocket::http::Header;
use rocket::serde::json::Json;
use rocket::{Responder, State, get, post};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::accounts::api::login::{LoginRequest, invalid_credentials, verify_password};
use crate::accounts::lockout::ShadowCounters;
use crate::accounts::store::{self as accounts_store, Credentials, UserView};
use crate::auth::console::{
    self, Console, ConsolePolicy, ConsoleSession, SameOriginJson, clear_cookie, set_cookie,
};
use crate::auth::roles::{Role, UserStatus};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::{Millis, rfc3339};
use crate::state::App;

/// Who is signed in to the console.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleUser {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub role: Role,
}

/// A console session: its admin and when it ends.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleSessionResponse {
    pub user: ConsoleUser,
    /// The absolute end of the session (`admin_session_absolute_timeout_secs` after sign-in).
    pub expires_at: String,
    /// When the session ends unless used before (`admin_session_idle_timeout_secs`).
    pub idle_expires_at: String,
}

fn response(user: UserView, session: &ConsoleSession) -> ConsoleSessionResponse {
    ConsoleSessionResponse {
        user: ConsoleUser {
            id: user.id.to_string(),
            email: user.email,
            display_name: user.display_name,
            role: user.role,
        },
        expires_at: rfc3339(session.expires_at),
        idle_expires_at: rfc3339(session.idle_expires_at()),
    }
}

#[derive(Responder)]
pub struct SignedIn {
    inner: Json<ConsoleSessionResponse>,
    cookie: Header<'static>,
}

#[derive(Responder)]
#[response(status = 204)]
pub struct SignedOut {
    inner: (),
    cookie: Header<'static>,
}

/// Sign in to the admin console with an admin's email and password. A wrong password,
/// an unknown email, a disabled account and an account that is not an admin all get the
/// same 401. Sets `audiostudio_admin` (`HttpOnly; SameSite=Strict; Path=/admin; Secure`).
#[utoipa::path(post, path = "/admin/api/login", tag = "admin console", request_body(content = LoginRequest,
        example = json!({"email": "root@example.com", "password": "violet kettle 9 tambourine"})),
    responses(
        (status = 200, description = "Signed in; the cookie is set", body = ConsoleSessionResponse,
            headers(("Set-Cookie" = String, description = "audiostudio_admin=<opaque>; HttpOnly; SameSite=Strict; Path=/admin; Secure"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong email or password, or not an active admin", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a same-origin JSON request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong JSON types or fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts, for this address or this account", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/login", data = "<body>")]
pub async fn console_login(
    app: &State<App>,
    shadow: &State<ShadowCounters>,
    policy: &State<ConsolePolicy>,
    _same_origin: SameOriginJson,
    client: ClientInfo,
    body: JsonBody<'_, LoginRequest>,
) -> ApiResult<SignedIn> {
    let body = parse_body(body)?;
    let (account, _, _) = verify_password(app, shadow, &client, &body.email, body.password).await?;
    let (policy, now) = (policy.inner().clone(), app.clock.now_ms());
    let opened = app
        .db
        .write(move |tx| open(tx, account, &policy, &client, now))
        .await?;
    let (token, user, session) = opened.ok_or_else(invalid_credentials)?;
    Ok(SignedIn {
        inner: Json(response(user, &session)),
        cookie: Header::new("Set-Cookie", set_cookie(&token)),
    })
}

/// Opens the session if the verified account is still an active admin with the same
/// password; otherwise audits the refusal and opens nothing.
fn open(
    tx: &rusqlite::Transaction<'_>,
    account: Credentials,
    policy: &ConsolePolicy,
    client: &ClientInfo,
    now: Millis,
) -> ApiResult<Option<(String, UserView, ConsoleSession)>> {
    let actor = Actor::user(&account.id, client);
    let current = accounts_store::credentials_by_id(tx, &account.id)?;
    let user = accounts_store::find_user(tx, &account.id)?;
    let refusal = match (&current, &user) {
        (Some(c), _) if c.password_hash != account.password_hash => Some("password_changed"),
        (Some(c), Some(u)) if c.status == UserStatus::Active && u.role == Role::Admin => None,
        (Some(c), _) if c.status != UserStatus::Active => Some("disabled"),
        _ => Some("not_admin"),
    };
    let (Some(user), None) = (user, refusal) else {
        let event = Event::new("admin.console_login_refused")
            .target("user", &account.id)
            .details(json!({ "reason": refusal }));
        audit::record(tx, now, &actor, event)?;
        return Ok(None);
    };
    accounts_store::clear_login_failures(tx, &account.id)?;
    let (token, session) =
        console::create(tx, &account.id, &account.password_hash, policy, client, now)?;
    let event = Event::new("admin.console_login").target("console_session", &session.id);
    audit::record(tx, now, &actor, event)?;
    Ok(Some((token, user, session)))
}

/// Sign out of the console: the session ends and the cookie is cleared.
#[utoipa::path(post, path = "/admin/api/logout", tag = "admin console", security(("admin_cookie" = [])),
    request_body(content = Object, description = "`{}`", example = json!({})),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a same-origin JSON request", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/logout")]
pub async fn console_logout(
    app: &State<App>,
    console: Console,
    client: ClientInfo,
) -> ApiResult<SignedOut> {
    let session = console.0;
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            console::revoke(tx, &session.id, "logout", now)?;
            let actor = Actor::user(&session.user_id, &client);
            let event = Event::new("admin.console_logout").target("console_session", &session.id);
            audit::record(tx, now, &actor, event)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(SignedOut {
        inner: (),
        cookie: Header::new("Set-Cookie", clear_cookie()),
    })
}

/// Who is signed in to the console, and when the session ends.
#[utoipa::path(get, path = "/admin/api/me", tag = "admin console", security(("admin_cookie" = [])),
    responses(
        (status = 200, description = "The signed-in admin", body = ConsoleSessionResponse),
        (status = 401, description = "Not signed in, or the session ended", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/me")]
pub async fn console_me(
    app: &State<App>,
    console: Console,
) -> ApiResult<Json<ConsoleSessionResponse>> {
    let session = console.0;
    let id = session.user_id.clone();
    let user = app
        .db
        .read(move |c| Ok::<_, ApiError>(accounts_store::find_user(c, &id)?))
        .await?
        .ok_or(ApiError::Unauthorized("sign in to the admin console"))?;
    Ok(Json(response(user, &session)))
}
