//! `POST /api/auth/login`: email and password in, a new session out, in four steps:
//! reserve an attempt (or refuse a locked account), verify the password, record a
//! failure, open the session. An account with two-factor sign-in gets a challenge
//! instead of the session (completed by `POST /api/auth/mfa/verify`), and its failure
//! count stays until the second factor is right: a known password must not reset the
//! lockout between guesses of the code.

use rocket::serde::json::Json;
use rocket::{State, post};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{AuthResponse, auth_response, session_lifetime};
use crate::accounts::lockout::{self, AccountLockout, LockNotice, ShadowCounters};
use crate::accounts::mfa::{refund_password_attempt, store as mfa_store};
use crate::accounts::store::{self, Credentials, UserView};
use crate::accounts::validate;
use crate::auth::mfa;
use crate::auth::password::{MAX_LEN, Verified};
use crate::auth::roles::UserStatus;
use crate::auth::sessions::{self, NewSession};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::secret_token::{new_opaque_token, token_hash};
use crate::state::App;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// What a login answers: a session, or, for an account with two-factor sign-in, the
/// challenge to complete with `POST /api/auth/mfa/verify`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Session(AuthResponse),
    Challenge(MfaChallenge),
}

/// The password was right; a second factor is needed. No access or refresh token yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// Sent back with the code to `POST /api/auth/mfa/verify`.
    pub mfa_token: String,
    /// Seconds the challenge stays valid.
    pub expires_in: u64,
}

pub fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("the email or password is incorrect")
}

/// Log in with email and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in, or (two-factor accounts) the challenge to complete", body = LoginResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong email or password, or a disabled account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong JSON types or fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts, for this address or this account", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/login", data = "<body>")]
pub async fn login(
    app: &State<App>,
    shadow: &State<ShadowCounters>,
    client: ClientInfo,
    body: JsonBody<'_, LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let body = parse_body(body)?;
    let (account, verified, locks_until) =
        verify_password(app, shadow, &client, &body.email, body.password).await?;
    if account.status != UserStatus::Active {
        return Err(ApiError::Unauthorized("this account is disabled"));
    }
    let expires_in = app.settings.auth.mfa_challenge_ttl_secs;
    Ok(Json(
        match open_session(app, account, verified, client, locks_until).await? {
            Opened::Session(user, session) => {
                LoginResponse::Session(auth_response(app, user, session)?)
            }
            Opened::Challenge(mfa_token) => LoginResponse::Challenge(MfaChallenge {
                mfa_required: true,
                mfa_token,
                expires_in,
            }),
        },
    ))
}

/// The shared path of every password sign-in (this API's and the admin console's): the
/// attempt is counted against the account (or the unknown email) first, the password is
/// verified off the executor, and a failure is audited (and may lock the account). The
/// account's status is not checked: the caller decides what a disabled account gets.
/// Also when this attempt locks the account, if it does (a second factor still to come
/// keeps that lock: only a full sign-in clears the count).
pub async fn verify_password(
    app: &App,
    shadow: &ShadowCounters,
    client: &ClientInfo,
    email: &str,
    password: String,
) -> ApiResult<(Credentials, Verified, Option<Millis>)> {
    let email = validate::normalize_email(email);
    let (account, locks_until) = reserve(app, shadow.clone(), email.clone()).await?;
    // No account has a longer password; hashing megabytes of input would only cost us.
    let verified = if password.chars().count() > MAX_LEN {
        None
    } else {
        let stored = account.as_ref().map(|a| a.password_hash.clone());
        let password = SecretString::from(password);
        Some(app.hasher.verify(password, stored).await?)
    };
    match (account, verified) {
        (Some(account), Some(verified)) if verified.matches => Ok((account, verified, locks_until)),
        (account, _) => {
            record_failure(app, client, &email, account, locks_until).await?;
            Err(invalid_credentials())
        }
    }
}

/// Counts this attempt against the account (or the unknown email) before any hashing;
/// the account, if there is one, and when this attempt locks it, if it does.
async fn reserve(
    app: &App,
    shadow: ShadowCounters,
    email: String,
) -> ApiResult<(Option<Credentials>, Option<Millis>)> {
    let (lockout, now) = (AccountLockout::of(app), app.clock.now_ms());
    let key = lockout::shadow_key(app.jwt.derived(), &email);
    // Unknown emails take the same trip through the writer, so the answer takes as long.
    let (account, reservation) = app
        .db
        .write(move |tx| {
            let account = store::find_credentials(tx, &email)?;
            let reservation = match &account {
                Some(a) => lockout::reserve_account(tx, &a.id, now, &lockout.policy)?,
                None => shadow.reserve(key, now, &lockout.policy),
            };
            Ok::<_, ApiError>((account, reservation))
        })
        .await?;
    let locks_until = lockout.admit(reservation, now)?;
    Ok((account, locks_until))
}

/// Audits a failed login (already counted by its reservation); when this attempt locked
/// the account, its owner gets the unlock link.
async fn record_failure(
    app: &App,
    client: &ClientInfo,
    email: &str,
    account: Option<Credentials>,
    locks_until: Option<Millis>,
) -> ApiResult<()> {
    let (now, actor) = (app.clock.now_ms(), Actor::anonymous(client));
    let digest = lockout::typed_email_digest(app.jwt.derived(), email);
    let notice = account
        .as_ref()
        .and_then(|a| LockNotice::new(app, a, locks_until));
    let queued = app
        .db
        .write(move |tx| {
            let event = Event::new("auth.login_failed");
            let event = match &account {
                None => event.details(json!({ "email_digest": digest, "reason": "unknown_email" })),
                Some(account) => event.target("user", &account.id).details(
                    json!({ "reason": "wrong_password", "locked": locks_until.is_some() }),
                ),
            };
            audit::record(tx, now, &actor, event)?;
            let queued = match &notice {
                Some(notice) => notice.send(tx, now)?,
                None => false,
            };
            Ok::<_, ApiError>(queued)
        })
        .await?;
    if queued {
        app.mail_wakeup.notify_one();
    }
    Ok(())
}

/// What a verified password opens.
enum Opened {
    Session(UserView, NewSession),
    /// The token of the second-factor challenge.
    Challenge(String),
}

/// Stores the challenge of a verified password for a two-factor account; its token.
pub fn challenge(
    tx: &rusqlite::Transaction<'_>,
    account: &Credentials,
    client: &ClientInfo,
    now: Millis,
    ttl_ms: Millis,
) -> ApiResult<String> {
    let (token, hash) = new_opaque_token();
    let password_digest = token_hash(&account.password_hash);
    let stored = mfa_store::Challenge {
        token_hash: &hash,
        user_id: &account.id,
        password_digest: &password_digest,
        expires_at: now.saturating_add(ttl_ms),
    };
    mfa_store::insert_challenge(tx, &stored, now)?;
    let event = Event::new("auth.mfa_challenged").target("user", &account.id);
    audit::record(tx, now, &Actor::user(&account.id, client), event)?;
    Ok(token)
}

/// Opens the session of a verified login, unless the account changed since it was read.
/// A lock set meanwhile does not stop it: this attempt was counted before it was checked.
async fn open_session(
    app: &App,
    account: Credentials,
    verified: Verified,
    client: ClientInfo,
    locks_until: Option<Millis>,
) -> ApiResult<Opened> {
    let (now, lifetime) = (app.clock.now_ms(), session_lifetime(app));
    let policy = AccountLockout::of(app).policy;
    let ttl_ms = super::secs_to_ms(app.settings.auth.mfa_challenge_ttl_secs);
    app.db
        .write(move |tx| {
            // The hash was checked outside this transaction: if the account was disabled
            // or given a new password meanwhile, this login no longer counts.
            let current =
                store::credentials_by_id(tx, &account.id)?.ok_or_else(invalid_credentials)?;
            if current.password_hash != account.password_hash
                || current.status != UserStatus::Active
            {
                return Err(invalid_credentials());
            }
            if let Some(hash) = &verified.rehashed {
                store::replace_password_hash(tx, &account.id, &account.password_hash, hash, now)?;
            }
            if mfa::mfa_enabled(tx, &account.id)? {
                refund_password_attempt(tx, &account.id, now, &policy, locks_until)?;
                return Ok(Opened::Challenge(challenge(
                    tx, &account, &client, now, ttl_ms,
                )?));
            }
            store::clear_login_failures(tx, &account.id)?;
            let session = sessions::create(tx, &account.id, now, lifetime, &client)?;
            audit::record(
                tx,
                now,
                &Actor::user(&account.id, &client),
                Event::new("auth.login").target("session", &session.session_id),
            )?;
            let user = store::find_user(tx, &account.id)?.ok_or(ApiError::NotFound)?;
            Ok(Opened::Session(user, session))
        })
        .await
}
