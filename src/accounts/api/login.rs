//! `POST /api/auth/login`: email and password in, a new session out, in four steps:
//! refuse a locked account, verify the password, record a failure, open the session.

use rocket::serde::json::Json;
use rocket::{State, post};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{AccountLockout, AuthResponse, auth_response, refresh_ttl_ms};
use crate::accounts::store::{self, Credentials, UserView};
use crate::accounts::validate;
use crate::auth::password::{MAX_LEN, Verified};
use crate::auth::roles::UserStatus;
use crate::auth::sessions::{self, NewSession};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::ids::UserId;
use crate::state::App;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("the email or password is incorrect")
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
pub async fn login(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, LoginRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let body = parse_body(body)?;
    app.limits.login_per_ip.check(&client.ip_key())?;
    // No account has a longer password; hashing megabytes of input would only cost us.
    if body.password.chars().count() > MAX_LEN {
        return Err(invalid_credentials());
    }
    let email = validate::normalize_email(&body.email);
    let lookup = email.clone();
    let account = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::find_credentials(c, &lookup)?))
        .await?;
    let lockout = AccountLockout::of(app);
    lockout.refuse_if_locked(
        account.as_ref().and_then(|a| a.locked_until),
        app.clock.now_ms(),
    )?;
    let stored = account.as_ref().map(|a| a.password_hash.clone());
    let verified = app
        .hasher
        .verify(SecretString::from(body.password), stored)
        .await?;
    let account = match account {
        Some(account) if verified.matches => account,
        other => {
            record_failure(app, &client, email, other.map(|a| a.id), lockout).await?;
            return Err(invalid_credentials());
        }
    };
    if account.status != UserStatus::Active {
        return Err(ApiError::Unauthorized("this account is disabled"));
    }
    let (user, session) = open_session(app, account, verified, client, lockout).await?;
    Ok(Json(auth_response(app, user, session)?))
}

/// Audits a failed login; a wrong password also counts towards the account's lockout.
async fn record_failure(
    app: &App,
    client: &ClientInfo,
    email: String,
    account: Option<UserId>,
    lockout: AccountLockout,
) -> ApiResult<()> {
    let (now, actor) = (app.clock.now_ms(), Actor::anonymous(client));
    app.db
        .write(move |tx| {
            let event = Event::new("auth.login_failed");
            let event = match &account {
                None => {
                    let email: String = email.chars().take(validate::MAX_EMAIL_LEN).collect();
                    event.details(json!({ "email": email, "reason": "unknown_email" }))
                }
                Some(user_id) => {
                    let locked = store::record_login_failure(tx, user_id, now, &lockout.policy)?;
                    event
                        .target("user", user_id)
                        .details(json!({ "reason": "wrong_password", "locked": locked.is_some() }))
                }
            };
            Ok::<_, ApiError>(audit::record(tx, now, &actor, event)?)
        })
        .await
}

/// Opens the session of a verified login, unless the account changed since it was read.
async fn open_session(
    app: &App,
    account: Credentials,
    verified: Verified,
    client: ClientInfo,
    lockout: AccountLockout,
) -> ApiResult<(UserView, NewSession)> {
    let (now, ttl) = (app.clock.now_ms(), refresh_ttl_ms(app));
    app.db
        .write(move |tx| {
            // The hash was checked outside this transaction: if the account was locked,
            // disabled or given a new password meanwhile, this login no longer counts.
            let current =
                store::credentials_by_id(tx, &account.id)?.ok_or_else(invalid_credentials)?;
            lockout.refuse_if_locked(current.locked_until, now)?;
            if current.password_hash != account.password_hash
                || current.status != UserStatus::Active
            {
                return Err(invalid_credentials());
            }
            store::clear_login_failures(tx, &account.id)?;
            if let Some(hash) = &verified.rehashed {
                store::replace_password_hash(tx, &account.id, &account.password_hash, hash, now)?;
            }
            let session = sessions::create(tx, &account.id, now, ttl, &client)?;
            audit::record(
                tx,
                now,
                &Actor::user(&account.id, &client),
                Event::new("auth.login").target("session", &session.session_id),
            )?;
            let user = store::find_user(tx, &account.id)?.ok_or(ApiError::NotFound)?;
            Ok((user, session))
        })
        .await
}
