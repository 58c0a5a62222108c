//! `POST /api/auth/mfa/verify`: the second step of a two-factor login. The challenge of
//! `POST /api/auth/login` and a TOTP code (or a recovery code) in, a session out, as
//! from a login. Each attempt counts toward the account's lockout like a password, and
//! the route shares the per-IP login limit.

use rocket::serde::json::Json;
use rocket::{State, post};
use rusqlite::Transaction;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{AuthResponse, auth_response, session_lifetime};
use crate::accounts::emails::MfaChange;
use crate::accounts::lockout::AccountLockout;
use crate::accounts::mfa::totp::SealKey;
use crate::accounts::mfa::{self, Attempt, Proof, ops, seal_key, store};
use crate::accounts::store::{self as accounts_store, Credentials, UserView};
use crate::auth::mfa::Factor;
use crate::auth::roles::UserStatus;
use crate::auth::sessions::{self, Lifetime, NewSession};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::secret_token::token_hash;
use crate::state::App;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyRequest {
    /// The `mfa_token` login answered with.
    pub mfa_token: String,
    /// The current 6-digit code of the authenticator app; or else `recovery_code`.
    pub code: Option<String>,
    /// An unused recovery code (works once).
    pub recovery_code: Option<String>,
}

fn bad_challenge() -> ApiError {
    ApiError::Unauthorized("the sign-in challenge is invalid or expired; log in again")
}

/// What a verification ends in: the caller's session opened, or the factor refused.
pub enum Outcome<T> {
    Opened(T),
    Refused(Credentials, Option<Millis>),
}

/// Complete a two-factor login with a code or a recovery code.
#[utoipa::path(post, path = "/api/auth/mfa/verify", tag = "auth", request_body = MfaVerifyRequest,
    responses(
        (status = 200, description = "Logged in", body = AuthResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong or used code, an invalid or expired challenge, or a disabled account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of code and recovery_code", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts, for this address or this account", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/mfa/verify", data = "<body>")]
pub async fn verify(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, MfaVerifyRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let body = parse_body(body)?;
    let attempt = Verification::new(app, &client, &body)?;
    let lifetime = session_lifetime(app);
    let open_client = client.clone();
    let outcome = app
        .db
        .write(move |tx| {
            attempt.complete(tx, |tx, account, factor, now| {
                open_api_session(tx, account, factor, now, lifetime, &open_client)
            })
        })
        .await?;
    app.mail_wakeup.notify_one();
    let (user, session) = opened(app, &client, outcome).await?;
    Ok(Json(auth_response(app, user, session)?))
}

/// The session a verification opened, or, when the factor was refused, the refusal
/// recorded (it counts toward the lockout) and its 401.
pub async fn opened<T>(app: &App, client: &ClientInfo, outcome: Outcome<T>) -> ApiResult<T> {
    match outcome {
        Outcome::Opened(opened) => Ok(opened),
        Outcome::Refused(account, locks_until) => {
            let actor = Actor::user(&account.id, client);
            mfa::record_refusal(app, actor, &account, locks_until, "sign_in").await?;
            Err(ApiError::Unauthorized(
                "the code is incorrect or already used",
            ))
        }
    }
}

/// Opens the API session of a completed two-factor login.
fn open_api_session(
    tx: &Transaction<'_>,
    account: &Credentials,
    factor: Factor,
    now: Millis,
    lifetime: Lifetime,
    client: &ClientInfo,
) -> ApiResult<(UserView, NewSession)> {
    let session = sessions::create_with_factor(tx, &account.id, now, lifetime, client, factor)?;
    let actor = Actor::user(&account.id, client);
    let event = Event::new("auth.login")
        .target("session", &session.session_id)
        .details(json!({ "factor": factor }));
    audit::record(tx, now, &actor, event)?;
    let user = accounts_store::find_user(tx, &account.id)?.ok_or(ApiError::NotFound)?;
    Ok((user, session))
}

/// A verification attempt, ready for the writer: the API's and the admin console's
/// second step share it, each opening its own kind of session.
pub struct Verification {
    challenge: String,
    proof: Proof,
    lockout: AccountLockout,
    seal: SealKey,
    base_url: String,
    client: ClientInfo,
    now: Millis,
}

impl Verification {
    /// The attempt `body` makes; 422 unless it carries exactly one of the two codes.
    pub fn new(app: &App, client: &ClientInfo, body: &MfaVerifyRequest) -> ApiResult<Self> {
        let proof = match (&body.code, &body.recovery_code) {
            (Some(code), None) => Proof::Code(code.clone()),
            (None, Some(code)) => Proof::recovery(app.jwt.derived(), code),
            _ => {
                return Err(ApiError::Unprocessable(
                    "send exactly one of code and recovery_code".into(),
                ));
            }
        };
        Ok(Verification {
            challenge: token_hash(&body.mfa_token),
            proof,
            lockout: AccountLockout::of(app),
            seal: seal_key(app),
            base_url: app.settings.server.public_base_url.clone(),
            client: client.clone(),
            now: app.clock.now_ms(),
        })
    }

    /// Checks the challenge and the factor (counted), and on success consumes the
    /// challenge and opens the session with `open`.
    pub fn complete<T>(
        self,
        tx: &Transaction<'_>,
        open: impl FnOnce(&Transaction<'_>, &Credentials, Factor, Millis) -> ApiResult<T>,
    ) -> ApiResult<Outcome<T>> {
        let now = self.now;
        let (user_id, password_digest) =
            store::challenge_user(tx, &self.challenge, now)?.ok_or_else(bad_challenge)?;
        let account = accounts_store::credentials_by_id(tx, &user_id)?.ok_or_else(bad_challenge)?;
        // A password changed or reset since the challenge voids it.
        if token_hash(&account.password_hash) != password_digest {
            return Err(bad_challenge());
        }
        if account.status != UserStatus::Active {
            return Err(ApiError::Unauthorized("this account is disabled"));
        }
        let factor = match mfa::attempt(tx, &self.lockout, &self.seal, &user_id, &self.proof, now)?
        {
            Attempt::Refused { locks_until } => return Ok(Outcome::Refused(account, locks_until)),
            Attempt::Accepted(factor) => factor,
        };
        store::delete_challenge(tx, &self.challenge)?;
        let opened = open(tx, &account, factor, now)?;
        if factor == Factor::RecoveryCode {
            let actor = Actor::user(&user_id, &self.client);
            let remaining = store::unused_recovery_codes(tx, &user_id)?;
            let change = MfaChange::RecoveryCodeUsed { remaining };
            ops::record_change(tx, &self.base_url, &account, change, &actor, now)?;
        }
        Ok(Outcome::Opened(opened))
    }
}
