//! The console's sign-in under `/admin/api`: `POST login` (the API login's own path:
//! lockout, per-IP limit, argon2 off the executor, audit; admins only), `POST logout`,
//! `GET me`. The session is an opaque cookie; see `auth::console`.

use rocket::http::Header;
use rocket::serde::json::Json;
use rocket::{Responder, State, get, post};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::accounts::api::login::{
    self, LoginRequest, MfaChallenge, invalid_credentials, verify_password,
};
use crate::accounts::lockout::{AccountLockout, Policy, ShadowCounters};
use crate::accounts::mfa::refund_password_attempt;
use crate::accounts::store::{self as accounts_store, Credentials, UserView};
use crate::auth::console::{
    self, Console, ConsolePolicy, ConsoleSession, SameOriginJson, clear_cookie, set_cookie,
};
use crate::auth::mfa::{self, AdminMfaPolicy, Factor};
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
    pub mfa: ConsoleMfa,
}

/// The signed-in admin's two-factor state, as the console needs it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleMfa {
    /// The account has two-factor sign-in on.
    pub enabled: bool,
    /// How this session was opened (or since confirmed): `password`, `totp` or `recovery_code`.
    #[schema(value_type = String)]
    pub factor: Factor,
    /// The admin routes refuse this session until it enrols (`mfa_required_for_admins`);
    /// `POST /admin/api/mfa/setup` and `/confirm` are open to it.
    pub enrolment_required: bool,
}

/// What the console's sign-in answers: a session (the cookie is set), or, for an
/// account with two-factor sign-in, the challenge for `POST /admin/api/login/verify`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ConsoleLoginResponse {
    Session(ConsoleSessionResponse),
    Challenge(MfaChallenge),
}

pub fn response(
    user: UserView,
    session: &ConsoleSession,
    policy: AdminMfaPolicy,
) -> ConsoleSessionResponse {
    let enrolment_required = policy.required && !session.mfa_enabled;
    ConsoleSessionResponse {
        user: ConsoleUser {
            id: user.id.to_string(),
            email: user.email,
            display_name: user.display_name,
            role: user.role,
        },
        expires_at: rfc3339(session.expires_at),
        idle_expires_at: rfc3339(session.idle_expires_at()),
        mfa: ConsoleMfa {
            enabled: session.mfa_enabled,
            factor: session.factor,
            enrolment_required,
        },
    }
}

#[derive(Responder)]
pub struct SignedIn {
    inner: Json<ConsoleLoginResponse>,
    cookie: Header<'static>,
}

impl SignedIn {
    /// The answer that signs the browser in with `token`.
    pub fn new(token: &str, body: ConsoleSessionResponse) -> SignedIn {
        SignedIn {
            inner: Json(ConsoleLoginResponse::Session(body)),
            cookie: Header::new("Set-Cookie", set_cookie(token)),
        }
    }
}

/// The console sign-in's answer: signed in, or the second step to take.
#[derive(Responder)]
pub enum ConsoleLogin {
    SignedIn(SignedIn),
    Challenge(Json<ConsoleLoginResponse>),
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
/// An account with two-factor sign-in gets `{mfa_required, mfa_token, expires_in}` and no
/// cookie yet: `POST /admin/api/login/verify` with a code completes the sign-in.
#[utoipa::path(post, path = "/admin/api/login", tag = "admin console", request_body(content = LoginRequest,
        example = json!({"email": "root@example.com", "password": "violet kettle 9 tambourine"})),
    responses(
        (status = 200, description = "Signed in and the cookie set, or (two-factor accounts) the challenge to complete", body = ConsoleLoginResponse,
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
) -> ApiResult<ConsoleLogin> {
    let body = parse_body(body)?;
    let (account, _, locks_until) =
        verify_password(app, shadow, &client, &body.email, body.password).await?;
    let (policy, now) = (policy.inner().clone(), app.clock.now_ms());
    let attempt = Attempt {
        lockout: AccountLockout::of(app).policy,
        locks_until,
        challenge_ttl_ms: app
            .settings
            .auth
            .mfa_challenge_ttl_secs
            .saturating_mul(1000)
            .try_into()
            .unwrap_or(Millis::MAX),
    };
    let opened = app
        .db
        .write(move |tx| open(tx, account, &policy, &attempt, &client, now))
        .await?;
    let mfa_policy = mfa_policy(app);
    match opened {
        Opened::Session(token, user, session) => Ok(ConsoleLogin::SignedIn(SignedIn::new(
            &token,
            response(user, &session, mfa_policy),
        ))),
        Opened::Challenge(mfa_token) => Ok(ConsoleLogin::Challenge(Json(
            ConsoleLoginResponse::Challenge(MfaChallenge {
                mfa_required: true,
                mfa_token,
                expires_in: app.settings.auth.mfa_challenge_ttl_secs,
            }),
        ))),
        Opened::Refused => Err(invalid_credentials()),
    }
}

/// Whether admins need a second factor (`mfa_required_for_admins`).
pub fn mfa_policy(app: &App) -> AdminMfaPolicy {
    AdminMfaPolicy {
        required: app.settings.auth.mfa_required_for_admins,
    }
}

/// What the password attempt brings to the sign-in's transaction.
struct Attempt {
    lockout: Policy,
    locks_until: Option<Millis>,
    challenge_ttl_ms: Millis,
}

/// What a verified password opens at the console.
enum Opened {
    Session(String, UserView, ConsoleSession),
    /// The token of the second-factor challenge.
    Challenge(String),
    Refused,
}

/// Opens the session if the verified account is still an active admin with the same
/// password; otherwise audits the refusal and opens nothing.
fn open(
    tx: &rusqlite::Transaction<'_>,
    account: Credentials,
    policy: &ConsolePolicy,
    attempt: &Attempt,
    client: &ClientInfo,
    now: Millis,
) -> ApiResult<Opened> {
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
        return Ok(Opened::Refused);
    };
    if mfa::mfa_enabled(tx, &account.id)? {
        // The count stays until the second factor is right (see `accounts::api::login`).
        refund_password_attempt(tx, &account.id, now, &attempt.lockout, attempt.locks_until)?;
        let token = login::challenge(tx, &account, client, now, attempt.challenge_ttl_ms)?;
        return Ok(Opened::Challenge(token));
    }
    accounts_store::clear_login_failures(tx, &account.id)?;
    let (token, session) =
        open_console_session(tx, &account, Factor::Password, policy, client, now)?;
    Ok(Opened::Session(token, user, session))
}

/// Opens a console session for a signed-in admin, audited; the cookie's token and it.
pub fn open_console_session(
    tx: &rusqlite::Transaction<'_>,
    account: &Credentials,
    factor: Factor,
    policy: &ConsolePolicy,
    client: &ClientInfo,
    now: Millis,
) -> ApiResult<(String, ConsoleSession)> {
    let (token, session) = console::create(
        tx,
        &account.id,
        &account.password_hash,
        factor,
        policy,
        client,
        now,
    )?;
    let event = Event::new("admin.console_login")
        .target("console_session", &session.id)
        .details(json!({ "factor": factor }));
    audit::record(tx, now, &Actor::user(&account.id, client), event)?;
    Ok((token, session))
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
    Ok(Json(response(user, &session, mfa_policy(app))))
}
