//! `POST /api/auth/mfa/totp/setup` and `/confirm`: enrolment in two-factor sign-in. Setup
//! (the password again) returns a new secret, as text, `otpauth://` URI and QR code, the
//! only time it is ever shown; confirm with a first code turns two-factor sign-in on and
//! returns the 10 recovery codes, also shown once. Until then nothing changes at login.

use rocket::serde::json::Json;
use rocket::{State, post};
use rusqlite::Transaction;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::change_password::verify_current;
use crate::accounts::emails::MfaChange;
use crate::accounts::mfa::totp::{self, TotpSecret};
use crate::accounts::mfa::{ops, recovery, seal_key, store};
use crate::accounts::store::{self as accounts_store, Credentials};
use crate::auth::AuthUser;
use crate::auth::mfa::{self, Factor};
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::state::App;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpSetupRequest {
    /// The account's password, asked again.
    pub password: String,
}

/// A new TOTP secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct TotpSetupResponse {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/...`, what the QR code holds.
    pub otpauth_uri: String,
    /// The QR code of `otpauth_uri`, an SVG document.
    pub qr_svg: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmRequest {
    /// The current 6-digit code of the new secret.
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// 10 single-use codes, shown this once; each replaces a TOTP code at sign-in.
    pub recovery_codes: Vec<String>,
}

pub(super) fn already_on() -> ApiError {
    ApiError::Conflict(
        "two-factor authentication is already on; disable it first to enrol again".into(),
    )
}

/// The caller's credentials.
pub(super) async fn credentials(app: &App, user: &AuthUser) -> ApiResult<Credentials> {
    let user_id = user.user_id.clone();
    app.db
        .read(move |c| Ok::<_, ApiError>(accounts_store::credentials_by_id(c, &user_id)?))
        .await?
        .ok_or(ApiError::NotFound)
}

/// Start enrolment: a new TOTP secret (any earlier unconfirmed one is replaced).
#[utoipa::path(post, path = "/api/auth/mfa/totp/setup", tag = "auth", security(("bearer" = [])), request_body = TotpSetupRequest,
    responses(
        (status = 200, description = "The new secret; two-factor sign-in stays off until confirmed", body = TotpSetupResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor sign-in is already on", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed password checks for this account", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/mfa/totp/setup", data = "<body>")]
pub async fn setup(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    client: ClientInfo,
    body: JsonBody<'_, TotpSetupRequest>,
) -> ApiResult<Json<TotpSetupResponse>> {
    let body = parse_body(body)?;
    Ok(Json(start(app, &user, client, body.password).await?))
}

/// Starts `user`'s enrolment once `password` is proved (the API's and the console's).
pub async fn start(
    app: &App,
    user: &AuthUser,
    client: ClientInfo,
    password: String,
) -> ApiResult<TotpSetupResponse> {
    let account = credentials(app, user).await?;
    let user_id = user.user_id.clone();
    if app
        .db
        .read(move |c| Ok::<_, ApiError>(mfa::mfa_enabled(c, &user_id)?))
        .await?
    {
        return Err(already_on());
    }
    let (field, action) = ("password", "auth.mfa_setup_failed");
    verify_current(app, user, &client, &account, password, field, action).await?;
    let secret = TotpSecret::generate();
    let sealed = seal_key(app).seal(&account.id, &secret)?;
    let otpauth_uri = secret.otpauth_uri(&app.settings.auth.mfa_issuer, &account.email)?;
    let qr_svg = totp::qr_svg(&otpauth_uri)?;
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            if !store::begin(tx, &account.id, &sealed, now)? {
                return Err(already_on());
            }
            accounts_store::clear_login_failures(tx, &account.id)?;
            let event = Event::new("auth.mfa_setup_started").target("user", &account.id);
            audit::record(tx, now, &Actor::user(&account.id, &client), event)?;
            Ok(())
        })
        .await?;
    Ok(TotpSetupResponse {
        secret: secret.base32(),
        otpauth_uri,
        qr_svg,
    })
}

/// Finish enrolment with a current code: two-factor sign-in is on from now.
#[utoipa::path(post, path = "/api/auth/mfa/totp/confirm", tag = "auth", security(("bearer" = [])), request_body = TotpConfirmRequest,
    responses(
        (status = 200, description = "On; the recovery codes, shown once", body = RecoveryCodesResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No enrolment started, or already on", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The code is not the current one", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/mfa/totp/confirm", data = "<body>")]
pub async fn confirm(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    client: ClientInfo,
    body: JsonBody<'_, TotpConfirmRequest>,
) -> ApiResult<Json<RecoveryCodesResponse>> {
    let body = parse_body(body)?;
    let session_id = user.session_id.clone();
    let mark = move |tx: &Transaction<'_>| mfa::set_session_factor(tx, &session_id, Factor::Totp);
    Ok(Json(finish(app, user, client, body.code, mark).await?))
}

/// Turns `user`'s enrolment on with a current `code`; `mark` records in the caller's
/// session (an API or a console session) that the code was just proved in it.
pub async fn finish(
    app: &App,
    user: AuthUser,
    client: ClientInfo,
    code: String,
    mark: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<()> + Send + 'static,
) -> ApiResult<RecoveryCodesResponse> {
    let codes = recovery::generate();
    let digests: Vec<String> = codes
        .iter()
        .map(|c| recovery::digest(app.jwt.derived(), c))
        .collect();
    let (seal, now) = (seal_key(app), app.clock.now_ms());
    let base_url = app.settings.server.public_base_url.clone();
    app.db
        .write(move |tx| {
            let account =
                accounts_store::credentials_by_id(tx, &user.user_id)?.ok_or(ApiError::NotFound)?;
            let enrolment = store::enrolment(tx, &user.user_id)?.ok_or_else(|| {
                ApiError::Conflict(
                    "no enrolment started: call /api/auth/mfa/totp/setup first".into(),
                )
            })?;
            if enrolment.confirmed {
                return Err(already_on());
            }
            let secret = seal.open(&user.user_id, &enrolment.secret_sealed)?;
            let now_secs = u64::try_from(now / 1000).unwrap_or(0);
            let step = secret
                .matching_step(&code, now_secs)?
                .and_then(|step| i64::try_from(step).ok())
                .ok_or_else(|| {
                    ApiError::field("code", "is not the current code of the new secret")
                })?;
            if !store::confirm(tx, &user.user_id, step, &digests, now)? {
                return Err(already_on());
            }
            // The code was just proved in this session.
            mark(tx)?;
            let actor = Actor::user(&user.user_id, &client);
            ops::record_change(tx, &base_url, &account, MfaChange::Enabled, &actor, now)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    app.mail_wakeup.notify_one();
    Ok(RecoveryCodesResponse {
        recovery_codes: codes,
    })
}
