//! Accounts over HTTP: registration, login, sessions, profile, password and email flows under `/api/auth`.

pub mod emails;
pub mod one_time;
pub mod users;
pub mod validate;

use rocket::http::Status;
use rocket::response::status::{Created, Custom, NoContent};
use rocket::serde::json::Json;
use rocket::{Build, Rocket, Route, State, delete, get, post, put, routes};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::auth::roles::{Role, UserStatus};
use crate::auth::sessions::{self, NewSession, Refresh, SessionView};
use crate::http::error::{ApiError, ApiResult, Problem, Throttle};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::mail;
use crate::state::App;
use one_time::Purpose;
use users::{Lockout, NewUser, ProfileChange, ProfileView, UserView};
use validate::Checks;

const RESET_TOKEN_TTL_MS: Millis = 30 * 60 * 1000;
const VERIFY_TOKEN_TTL_MS: Millis = 48 * 3600 * 1000;

/// Mounts the account routes under `/api/auth`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket.mount("/api/auth", routes())
}

fn routes() -> Vec<Route> {
    routes![
        register,
        login,
        refresh,
        logout,
        logout_all,
        list_sessions,
        revoke_session,
        get_profile,
        update_profile,
        change_password,
        request_password_reset,
        reset_password,
        verify_email,
        resend_verification
    ]
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// Absent: unchanged; empty string: cleared.
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    /// A JSON object of at most 16 KiB; replaces the stored one.
    #[schema(value_type = Option<Object>)]
    pub preferences: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub token: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

/// A new session: the user, a short-lived access token and a refresh token.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthResponse {
    pub user: UserView,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub session_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedResponse {
    pub message: String,
    /// How many sessions were revoked.
    pub sessions_revoked: usize,
}

fn message(text: &str) -> Json<MessageResponse> {
    Json(MessageResponse {
        message: text.to_owned(),
    })
}

fn secret(s: String) -> SecretString {
    SecretString::from(s)
}

fn auth_response(app: &App, user: UserView, session: NewSession) -> ApiResult<AuthResponse> {
    let access_token = app.jwt.issue(
        &user.id,
        &session.session_id,
        user.role,
        app.clock.now_secs(),
    )?;
    Ok(AuthResponse {
        user,
        access_token,
        refresh_token: session.refresh_token,
        token_type: "Bearer",
        expires_in: app.jwt.ttl_secs,
        session_id: session.session_id,
    })
}

fn refresh_ttl_ms(app: &App) -> Millis {
    i64::try_from(app.settings.refresh_token_ttl_days)
        .unwrap_or(3650)
        .saturating_mul(24 * 3600 * 1000)
}

/// Create an account and log it in; a verification email is queued.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created and logged in", body = AuthResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this address", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/register", data = "<body>")]
async fn register(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, RegisterRequest>,
) -> ApiResult<Created<Json<AuthResponse>>> {
    let body = parse_body(body)?;
    app.limits.register_per_ip.check(&client.ip_key())?;
    let mut checks = Checks::default()
        .check("email", validate::email(&body.email))
        .check("password", validate::new_password(&body.password));
    if let Some(name) = &body.display_name {
        checks = checks.check("display_name", validate::display_name(name));
    }
    checks.finish()?;

    let email_address = validate::normalize_email(&body.email);
    let lookup = email_address.clone();
    if app
        .db
        .read(move |c| Ok::<_, ApiError>(users::email_taken(c, &lookup)?))
        .await?
    {
        return Err(taken());
    }
    let password_hash = app.hasher.hash(secret(body.password)).await?;
    let now = app.clock.now_ms();
    let (ttl, base_url) = (refresh_ttl_ms(app), app.settings.public_base_url.clone());
    let display_name = body.display_name.map(|n| n.trim().to_owned());
    let (user, session) = app
        .db
        .write(move |tx| {
            let new = NewUser {
                email: &email_address,
                password_hash: &password_hash,
                role: Role::User,
                display_name: display_name.as_deref(),
                email_verified: false,
            };
            let user_id = users::insert(tx, &new, now)?.ok_or_else(taken)?;
            let session = sessions::create(tx, &user_id, now, ttl, &client)?;
            let token =
                one_time::issue(tx, &user_id, Purpose::VerifyEmail, now, VERIFY_TOKEN_TTL_MS)?;
            mail::enqueue(
                tx,
                &emails::verification(&base_url, &email_address, &token),
                now,
            )?;
            audit::record(
                tx,
                now,
                &Actor::user(&user_id, &client),
                Event::new("user.registered").target("user", &user_id),
            )?;
            let user = users::find_user(tx, &user_id)?.ok_or(ApiError::NotFound)?;
            Ok::<_, ApiError>((user, session))
        })
        .await?;
    app.mail_wakeup.notify_one();
    Ok(Created::new("/api/auth/profile").body(Json(auth_response(app, user, session)?)))
}

fn bad_token() -> ApiError {
    ApiError::field("token", "is invalid, already used or expired")
}

fn taken() -> ApiError {
    ApiError::Conflict("an account with this email already exists".into())
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("the email or password is incorrect")
}

fn locked(app: &App, until: Millis, now: Millis) -> ApiError {
    locked_error_builder(app)(until, now)
}

/// Builds the 429 of a locked account; owned, so it can run inside a write job.
fn locked_error_builder(app: &App) -> impl Fn(Millis, Millis) -> ApiError + Send + 'static {
    let (limit, window_secs) = (
        app.settings.login_max_failures,
        app.settings.login_failure_window_secs,
    );
    move |until, now| ApiError::TooManyRequests {
        detail: "too many failed logins for this account; try again later".into(),
        throttle: Throttle {
            retry_after_secs: u64::try_from(until.saturating_sub(now).saturating_add(999) / 1000)
                .unwrap_or(1)
                .max(1),
            limit,
            window_secs,
        },
    }
}

fn lockout_policy(app: &App) -> Lockout {
    Lockout {
        max_failures: app.settings.login_max_failures,
        window_ms: secs_to_ms(app.settings.login_failure_window_secs),
        lockout_ms: secs_to_ms(app.settings.login_lockout_secs),
    }
}

/// Log in with email and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = AuthResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong email or password, or a disabled account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong JSON types or fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts, for this address or this account", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/login", data = "<body>")]
async fn login(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, LoginRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let body = parse_body(body)?;
    app.limits.login_per_ip.check(&client.ip_key())?;
    // No account has a longer password; hashing megabytes of input would only cost us.
    if body.password.chars().count() > crate::auth::password::MAX_LEN {
        return Err(invalid_credentials());
    }
    let email_address = validate::normalize_email(&body.email);
    let lookup = email_address.clone();
    let account = app
        .db
        .read(move |c| Ok::<_, ApiError>(users::find_credentials(c, &lookup)?))
        .await?;
    let now = app.clock.now_ms();
    if let Some(until) = account.as_ref().and_then(|a| a.locked_until)
        && until > now
    {
        return Err(locked(app, until, now));
    }
    let stored = account.as_ref().map(|a| a.password_hash.clone());
    let verified = app.hasher.verify(secret(body.password), stored).await?;
    let now = app.clock.now_ms();
    let actor = Actor::anonymous(&client);

    let Some(account) = account else {
        app.db
            .write(move |tx| {
                let email: String = email_address
                    .chars()
                    .take(validate::MAX_EMAIL_LEN)
                    .collect();
                let event = Event::new("auth.login_failed")
                    .details(json!({ "email": email, "reason": "unknown_email" }));
                Ok::<_, ApiError>(audit::record(tx, now, &actor, event)?)
            })
            .await?;
        return Err(invalid_credentials());
    };

    if !verified.matches {
        let policy = lockout_policy(app);
        let user_id = account.id.clone();
        app.db
            .write(move |tx| {
                let locked_until = users::record_login_failure(tx, &user_id, now, &policy)?;
                let actor = Actor {
                    user_id: None,
                    ..actor
                };
                let event = Event::new("auth.login_failed")
                    .target("user", &user_id)
                    .details(
                        json!({ "reason": "wrong_password", "locked": locked_until.is_some() }),
                    );
                audit::record(tx, now, &actor, event)?;
                Ok::<_, ApiError>(())
            })
            .await?;
        return Err(invalid_credentials());
    }
    if account.status != UserStatus::Active {
        return Err(ApiError::Unauthorized("this account is disabled"));
    }

    let ttl = refresh_ttl_ms(app);
    let lockout_limit = locked_error_builder(app);
    let (user, session) = app
        .db
        .write(move |tx| {
            // The hash was checked outside this transaction: if the account was locked,
            // disabled or given a new password meanwhile, this login no longer counts.
            let current =
                users::credentials_by_id(tx, &account.id)?.ok_or_else(invalid_credentials)?;
            if let Some(until) = current.locked_until.filter(|until| *until > now) {
                return Err(lockout_limit(until, now));
            }
            if current.password_hash != account.password_hash
                || current.status != UserStatus::Active
            {
                return Err(invalid_credentials());
            }
            users::clear_login_failures(tx, &account.id)?;
            if let Some(hash) = &verified.rehashed {
                users::replace_password_hash(tx, &account.id, &account.password_hash, hash, now)?;
            }
            let session = sessions::create(tx, &account.id, now, ttl, &client)?;
            audit::record(
                tx,
                now,
                &Actor::user(&account.id, &client),
                Event::new("auth.login").target("session", &session.session_id),
            )?;
            let user = users::find_user(tx, &account.id)?.ok_or(ApiError::NotFound)?;
            Ok::<_, ApiError>((user, session))
        })
        .await?;
    Ok(Json(auth_response(app, user, session)?))
}

fn secs_to_ms(secs: u64) -> Millis {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// Exchange a refresh token for a new access token and refresh token.
///
/// Each refresh token works once. Presenting one that was already exchanged (outside a
/// few seconds of grace for concurrent tabs) revokes the whole session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = AuthResponse),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/refresh", data = "<body>")]
async fn refresh(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, RefreshRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let grace = secs_to_ms(app.settings.refresh_reuse_grace_secs);
    let outcome = app
        .db
        .write(move |tx| {
            let outcome = sessions::rotate(tx, &body.refresh_token, now, grace)?;
            match &outcome {
                Refresh::Reused {
                    session_id,
                    user_id,
                } => {
                    let event =
                        Event::new("auth.refresh_token_reused").target("session", session_id);
                    audit::record(tx, now, &Actor::user(user_id, &client), event)?;
                    Ok::<_, ApiError>((outcome, None))
                }
                Refresh::Rotated { user_id, .. } => {
                    let user = users::find_user(tx, user_id)?;
                    Ok((outcome, user))
                }
                Refresh::Invalid => Ok((outcome, None)),
            }
        })
        .await?;
    match outcome {
        (
            Refresh::Rotated {
                session_id,
                refresh_token,
                ..
            },
            Some(user),
        ) => Ok(Json(auth_response(
            app,
            user,
            NewSession {
                session_id,
                refresh_token,
            },
        )?)),
        (Refresh::Reused { .. }, _) => Err(ApiError::Unauthorized(
            "this refresh token was already used; the session has been revoked",
        )),
        _ => Err(ApiError::Unauthorized(
            "the refresh token is invalid or expired",
        )),
    }
}

/// End the current session; its access token stops working at once.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/logout")]
async fn logout(app: &State<App>, user: AuthUser, client: ClientInfo) -> ApiResult<NoContent> {
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            sessions::revoke(tx, &user.session_id, "logout", now)?;
            let event = Event::new("auth.logout").target("session", &user.session_id);
            Ok::<_, ApiError>(audit::record(
                tx,
                now,
                &Actor::user(&user.user_id, &client),
                event,
            )?)
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
async fn logout_all(
    app: &State<App>,
    user: AuthUser,
    client: ClientInfo,
) -> ApiResult<Json<RevokedResponse>> {
    let now = app.clock.now_ms();
    let count = app
        .db
        .write(move |tx| {
            let count = sessions::revoke_all(tx, &user.user_id, None, "logout_all", now)?;
            let event = Event::new("auth.logout_all")
                .target("user", &user.user_id)
                .details(json!({ "sessions_revoked": count }));
            audit::record(tx, now, &Actor::user(&user.user_id, &client), event)?;
            Ok::<_, ApiError>(count)
        })
        .await?;
    Ok(Json(RevokedResponse {
        message: "every session has been logged out".into(),
        sessions_revoked: count,
    }))
}

/// The caller's active sessions, newest first.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Active sessions", body = SessionsResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/sessions")]
async fn list_sessions(app: &State<App>, user: AuthUser) -> ApiResult<Json<SessionsResponse>> {
    let now = app.clock.now_ms();
    let sessions = app
        .db
        .read(move |c| {
            Ok::<_, ApiError>(sessions::list_active(
                c,
                &user.user_id,
                &user.session_id,
                now,
            )?)
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
async fn revoke_session(
    app: &State<App>,
    user: AuthUser,
    client: ClientInfo,
    id: &str,
) -> ApiResult<NoContent> {
    let now = app.clock.now_ms();
    let id = id.to_owned();
    app.db
        .write(move |tx| {
            let owned: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL)",
                [id.as_str(), user.user_id.as_str()],
                |r| r.get(0),
            )?;
            if !owned {
                return Err(ApiError::NotFound);
            }
            sessions::revoke(tx, &id, "revoked_by_user", now)?;
            let event = Event::new("auth.session_revoked").target("session", &id);
            Ok(audit::record(tx, now, &Actor::user(&user.user_id, &client), event)?)
        })
        .await?;
    Ok(NoContent)
}

/// The caller's account and profile.
#[utoipa::path(get, path = "/api/auth/profile", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = ProfileView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/profile")]
async fn get_profile(app: &State<App>, user: AuthUser) -> ApiResult<Json<ProfileView>> {
    let profile = app
        .db
        .read(move |c| Ok::<_, ApiError>(users::profile(c, &user.user_id)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(profile))
}

/// Change profile fields; absent fields stay as they are.
#[utoipa::path(put, path = "/api/auth/profile", tag = "auth", security(("bearer" = [])), request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The updated profile", body = ProfileView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[put("/profile", data = "<body>")]
async fn update_profile(
    app: &State<App>,
    user: AuthUser,
    client: ClientInfo,
    body: JsonBody<'_, UpdateProfileRequest>,
) -> ApiResult<Json<ProfileView>> {
    let body = parse_body(body)?;
    let mut checks = Checks::default();
    if let Some(name) = body.display_name.as_deref().filter(|n| !n.is_empty()) {
        checks = checks.check("display_name", validate::display_name(name));
    }
    if let Some(bio) = &body.bio {
        checks = checks.check("bio", validate::bio(bio));
    }
    if let Some(url) = body.avatar_url.as_deref().filter(|u| !u.is_empty()) {
        checks = checks.check("avatar_url", validate::avatar_url(url));
    }
    if let Some(preferences) = &body.preferences {
        checks = checks.check("preferences", validate::preferences(preferences));
    }
    checks.finish()?;
    let now = app.clock.now_ms();
    let change = ProfileChange {
        display_name: body.display_name,
        bio: body.bio,
        avatar_url: body.avatar_url,
        preferences: body.preferences,
    };
    let profile = app
        .db
        .write(move |tx| {
            users::update_profile(tx, &user.user_id, &change, now)?;
            let event = Event::new("user.profile_updated").target("user", &user.user_id);
            audit::record(tx, now, &Actor::user(&user.user_id, &client), event)?;
            users::profile(tx, &user.user_id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(Json(profile))
}

/// Change the password; every other session is logged out.
#[utoipa::path(post, path = "/api/auth/change-password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed", body = RevokedResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Current password wrong, or the new one is not acceptable", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/change-password", data = "<body>")]
async fn change_password(
    app: &State<App>,
    user: AuthUser,
    client: ClientInfo,
    body: JsonBody<'_, ChangePasswordRequest>,
) -> ApiResult<Json<RevokedResponse>> {
    let body = parse_body(body)?;
    Checks::default()
        .check("new_password", validate::new_password(&body.new_password))
        .finish()?;
    if body.current_password.chars().count() > crate::auth::password::MAX_LEN {
        return Err(ApiError::field("current_password", "is incorrect"));
    }
    let user_id = user.user_id.clone();
    let account = app
        .db
        .read(move |c| Ok::<_, ApiError>(users::credentials_by_id(c, &user_id)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    let now = app.clock.now_ms();
    // Guessing the current password counts as failed logins: a stolen access token
    // must not allow unlimited guesses.
    if let Some(until) = account.locked_until.filter(|until| *until > now) {
        return Err(locked(app, until, now));
    }
    let verified = app
        .hasher
        .verify(
            secret(body.current_password),
            Some(account.password_hash.clone()),
        )
        .await?;
    let now = app.clock.now_ms();
    if !verified.matches {
        let (policy, actor) = (lockout_policy(app), Actor::user(&user.user_id, &client));
        app.db
            .write(move |tx| {
                let locked_until = users::record_login_failure(tx, &user.user_id, now, &policy)?;
                let event = Event::new("auth.password_change_failed")
                    .target("user", &user.user_id)
                    .details(json!({ "locked": locked_until.is_some() }));
                Ok::<_, ApiError>(audit::record(tx, now, &actor, event)?)
            })
            .await?;
        return Err(ApiError::field("current_password", "is incorrect"));
    }
    let new_hash = app.hasher.hash(secret(body.new_password)).await?;
    let now = app.clock.now_ms();
    let count = app
        .db
        .write(move |tx| {
            // Hashing happened outside the transaction: the session must still be live
            // and the password still the one verified (a reset may have happened since).
            if sessions::active_session_user(tx, &user.session_id, &user.user_id, now)?.is_none() {
                return Err(ApiError::Unauthorized(
                    "the session has ended; log in again",
                ));
            }
            if !users::replace_password_hash(
                tx,
                &user.user_id,
                &account.password_hash,
                &new_hash,
                now,
            )? {
                return Err(ApiError::Conflict(
                    "the password was changed meanwhile; try again".into(),
                ));
            }
            let count = sessions::revoke_all(
                tx,
                &user.user_id,
                Some(&user.session_id),
                "password_changed",
                now,
            )?;
            one_time::expire_all(tx, &user.user_id, Purpose::ResetPassword, now)?;
            let event = Event::new("auth.password_changed")
                .target("user", &user.user_id)
                .details(json!({ "sessions_revoked": count }));
            audit::record(tx, now, &Actor::user(&user.user_id, &client), event)?;
            Ok::<_, ApiError>(count)
        })
        .await?;
    Ok(Json(RevokedResponse {
        message: "password changed; other sessions were logged out".into(),
        sessions_revoked: count,
    }))
}

const RESET_REQUESTED: &str = "if an account exists for that address, a reset link is on its way";

/// Ask for a password-reset email. The answer is the same whether or not the account exists.
#[utoipa::path(post, path = "/api/auth/request-password-reset", tag = "auth", request_body = EmailRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists)", body = MessageResponse),
        (status = 422, description = "Not an email address", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/request-password-reset", data = "<body>")]
async fn request_password_reset(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, EmailRequest>,
) -> ApiResult<Custom<Json<MessageResponse>>> {
    let body = parse_body(body)?;
    app.limits.password_reset_per_ip.check(&client.ip_key())?;
    Checks::default()
        .check("email", validate::email(&body.email))
        .finish()?;
    let email_address = validate::normalize_email(&body.email);
    let now = app.clock.now_ms();
    let base_url = app.settings.public_base_url.clone();
    let interval = secs_to_ms(app.settings.password_reset_email_interval_secs);
    let queued = app
        .db
        .write(move |tx| {
            let user_id = users::find_id_by_email(tx, &email_address)?;
            // One reset email per account per interval, so nobody can flood an inbox;
            // the answer stays the same either way.
            let recently = match &user_id {
                Some(id) => one_time::last_issued(tx, id, Purpose::ResetPassword)?
                    .is_some_and(|last| now.saturating_sub(last) < interval),
                None => false,
            };
            let event = Event::new("auth.password_reset_requested");
            let event = match &user_id {
                Some(id) => event
                    .target("user", id)
                    .details(json!({ "throttled": recently })),
                None => event.details(json!({ "email": email_address, "account": false })),
            };
            audit::record(tx, now, &Actor::anonymous(&client), event)?;
            if let Some(user_id) = user_id.as_ref().filter(|_| !recently) {
                let token =
                    one_time::issue(tx, user_id, Purpose::ResetPassword, now, RESET_TOKEN_TTL_MS)?;
                let message = emails::password_reset(&base_url, &email_address, &token);
                mail::enqueue(tx, &message, now)?;
            }
            Ok::<_, ApiError>(user_id.is_some() && !recently)
        })
        .await?;
    if queued {
        app.mail_wakeup.notify_one();
    }
    Ok(Custom(Status::Accepted, message(RESET_REQUESTED)))
}

/// Set a new password with the token from a reset email; every session is logged out.
#[utoipa::path(post, path = "/api/auth/reset-password", tag = "auth", request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "Password reset", body = MessageResponse),
        (status = 422, description = "Invalid, used or expired token, or an unacceptable password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/reset-password", data = "<body>")]
async fn reset_password(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, ResetPasswordRequest>,
) -> ApiResult<Json<MessageResponse>> {
    let body = parse_body(body)?;
    app.limits.password_reset_per_ip.check(&client.ip_key())?;
    Checks::default()
        .check("new_password", validate::new_password(&body.new_password))
        .finish()?;
    // Check the token before paying for a hash; it is consumed only in the write below.
    let (token, now) = (body.token, app.clock.now_ms());
    let probe = token.clone();
    let usable = app
        .db
        .read(move |c| {
            Ok::<_, ApiError>(one_time::is_usable(c, &probe, Purpose::ResetPassword, now)?)
        })
        .await?;
    if !usable {
        return Err(bad_token());
    }
    let new_hash = app.hasher.hash(secret(body.new_password)).await?;
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            let user_id = one_time::consume(tx, &token, Purpose::ResetPassword, now)?
                .ok_or_else(bad_token)?;
            users::set_password_hash(tx, &user_id, &new_hash, now)?;
            users::clear_login_failures(tx, &user_id)?;
            // Receiving the email proves the address.
            users::mark_email_verified(tx, &user_id, now)?;
            one_time::expire_all(tx, &user_id, Purpose::ResetPassword, now)?;
            let count = sessions::revoke_all(tx, &user_id, None, "password_reset", now)?;
            let event = Event::new("auth.password_reset_completed")
                .target("user", &user_id)
                .details(json!({ "sessions_revoked": count }));
            audit::record(tx, now, &Actor::user(&user_id, &client), event)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(message("password reset; log in with the new password"))
}

/// Confirm an email address with the token from the verification email.
#[utoipa::path(post, path = "/api/auth/verify-email", tag = "auth", request_body = TokenRequest,
    responses(
        (status = 200, description = "Verified", body = MessageResponse),
        (status = 422, description = "Invalid, used or expired token", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/verify-email", data = "<body>")]
async fn verify_email(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, TokenRequest>,
) -> ApiResult<Json<MessageResponse>> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            let user_id = one_time::consume(tx, &body.token, Purpose::VerifyEmail, now)?
                .ok_or_else(bad_token)?;
            users::mark_email_verified(tx, &user_id, now)?;
            let event = Event::new("auth.email_verified").target("user", &user_id);
            Ok::<_, ApiError>(audit::record(
                tx,
                now,
                &Actor::user(&user_id, &client),
                event,
            )?)
        })
        .await?;
    Ok(message("email address verified"))
}

/// Send the verification email again (at most once a minute by default).
#[utoipa::path(post, path = "/api/auth/resend-verification", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = MessageResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already verified", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Asked again too soon", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/resend-verification")]
async fn resend_verification(
    app: &State<App>,
    user: AuthUser,
) -> ApiResult<Custom<Json<MessageResponse>>> {
    let now = app.clock.now_ms();
    let interval = secs_to_ms(app.settings.resend_verification_interval_secs);
    let base_url = app.settings.public_base_url.clone();
    app.db
        .write(move |tx| {
            let account = users::find_user(tx, &user.user_id)?.ok_or(ApiError::NotFound)?;
            if account.email_verified {
                return Err(ApiError::Conflict(
                    "the email address is already verified".into(),
                ));
            }
            if let Some(last) = one_time::last_issued(tx, &user.user_id, Purpose::VerifyEmail)?
                && now - last < interval
            {
                return Err(ApiError::TooManyRequests {
                    detail: "a verification email was sent moments ago; check your inbox".into(),
                    throttle: Throttle {
                        retry_after_secs: u64::try_from((last + interval - now + 999) / 1000)
                            .unwrap_or(1),
                        limit: 1,
                        window_secs: u64::try_from(interval / 1000).unwrap_or(60),
                    },
                });
            }
            let token = one_time::issue(
                tx,
                &user.user_id,
                Purpose::VerifyEmail,
                now,
                VERIFY_TOKEN_TTL_MS,
            )?;
            mail::enqueue(
                tx,
                &emails::verification(&base_url, &account.email, &token),
                now,
            )?;
            Ok(())
        })
        .await?;
    app.mail_wakeup.notify_one();
    Ok(Custom(
        Status::Accepted,
        message("a new verification email is on its way"),
    ))
}
