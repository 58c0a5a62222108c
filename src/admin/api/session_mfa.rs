//! Two-factor sign-in at the console (cookie only, under `/admin/api`): `POST login/verify`
//! completes a sign-in whose password was right with a TOTP or recovery code (the API's
//! own verification: counted toward the lockout, a code used once); `POST mfa/setup` and
//! `mfa/confirm` let a signed-in admin enrol (the API's own enrolment), which is all a
//! password-only session may do while `mfa_required_for_admins` is on.

use rocket::serde::json::Json;
use rocket::{State, post};

use super::session::{
    ConsoleSessionResponse, SignedIn, mfa_policy, open_console_session, response,
};
use crate::accounts::api::mfa_enrol::{
    self, RecoveryCodesResponse, TotpConfirmRequest, TotpSetupRequest, TotpSetupResponse,
};
use crate::accounts::api::mfa_verify::{self, MfaVerifyRequest, Verification};
use crate::accounts::store as accounts_store;
use crate::auth::AuthUser;
use crate::auth::console::{self, Console, ConsolePolicy, SameOriginJson};
use crate::auth::mfa::Factor;
use crate::auth::roles::{Role, UserStatus};
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::state::App;

/// Complete a console sign-in with the authenticator's current code or a recovery code.
#[utoipa::path(post, path = "/admin/api/login/verify", tag = "admin console",
    request_body(content = MfaVerifyRequest, example = json!({"mfa_token": "the mfa_token of POST /admin/api/login", "code": "123456"})),
    responses(
        (status = 200, description = "Signed in; the cookie is set", body = ConsoleSessionResponse,
            headers(("Set-Cookie" = String, description = "audiostudio_admin=<opaque>; HttpOnly; SameSite=Strict; Path=/admin; Secure"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong or used code, an invalid or expired challenge, or not an active admin", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a same-origin JSON request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of code and recovery_code", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts, for this address or this account", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/login/verify", data = "<body>")]
pub async fn console_login_verify(
    app: &State<App>,
    policy: &State<ConsolePolicy>,
    _same_origin: SameOriginJson,
    client: ClientInfo,
    body: JsonBody<'_, MfaVerifyRequest>,
) -> ApiResult<SignedIn> {
    let body = parse_body(body)?;
    let attempt = Verification::new(app, &client, &body)?;
    let (policy, open_client) = (policy.inner().clone(), client.clone());
    let outcome = app
        .db
        .write(move |tx| {
            attempt.complete(tx, |tx, account, factor, now| {
                let user = accounts_store::find_user(tx, &account.id)?
                    .filter(|u| u.role == Role::Admin && u.status == UserStatus::Active)
                    .ok_or(ApiError::Unauthorized("the email or password is incorrect"))?;
                accounts_store::clear_login_failures(tx, &account.id)?;
                let (token, session) =
                    open_console_session(tx, account, factor, &policy, &open_client, now)?;
                Ok((token, user, session))
            })
        })
        .await?;
    app.mail_wakeup.notify_one();
    let (token, user, session) = mfa_verify::opened(app, &client, outcome).await?;
    Ok(SignedIn::new(
        &token,
        response(user, &session, mfa_policy(app)),
    ))
}

/// The signed-in admin as the API's enrolment sees them.
fn enrolling(console: &Console) -> AuthUser {
    AuthUser {
        user_id: console.0.user_id.clone(),
        session_id: console.0.id.clone().into(),
        role: Role::Admin,
    }
}

/// Start enrolling the signed-in admin in two-factor sign-in (the password again).
#[utoipa::path(post, path = "/admin/api/mfa/setup", tag = "admin console", security(("admin_cookie" = [])),
    request_body(content = TotpSetupRequest, example = json!({"password": "violet kettle 9 tambourine"})),
    responses(
        (status = 200, description = "The new secret, shown this once; two-factor sign-in stays off until confirmed", body = TotpSetupResponse),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a same-origin JSON request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor sign-in is already on", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed password checks for this account", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/mfa/setup", data = "<body>")]
pub async fn console_mfa_setup(
    app: &State<App>,
    console: Console,
    _limit: UserLimit,
    client: ClientInfo,
    body: JsonBody<'_, TotpSetupRequest>,
) -> ApiResult<Json<TotpSetupResponse>> {
    let body = parse_body(body)?;
    let user = enrolling(&console);
    Ok(Json(
        mfa_enrol::start(app, &user, client, body.password).await?,
    ))
}

/// Turn two-factor sign-in on with the new secret's current code; this session counts as
/// opened with it from now.
#[utoipa::path(post, path = "/admin/api/mfa/confirm", tag = "admin console", security(("admin_cookie" = [])),
    request_body(content = TotpConfirmRequest, example = json!({"code": "123456"})),
    responses(
        (status = 200, description = "On; the recovery codes, shown once", body = RecoveryCodesResponse),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a same-origin JSON request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No enrolment started, or already on", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The code is not the current one", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/mfa/confirm", data = "<body>")]
pub async fn console_mfa_confirm(
    app: &State<App>,
    console: Console,
    _limit: UserLimit,
    client: ClientInfo,
    body: JsonBody<'_, TotpConfirmRequest>,
) -> ApiResult<Json<RecoveryCodesResponse>> {
    let body = parse_body(body)?;
    let user = enrolling(&console);
    let session_id = console.0.id.clone();
    let mark =
        move |tx: &rusqlite::Transaction<'_>| console::set_factor(tx, &session_id, Factor::Totp);
    Ok(Json(
        mfa_enrol::finish(app, user, client, body.code, mark).await?,
    ))
}
