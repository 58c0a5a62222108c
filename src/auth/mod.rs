//! Authentication: password hashing, access tokens, sessions and the request guards built on them.

pub mod console;
pub mod derived;
pub mod jwt;
pub mod mfa;
pub mod password;
pub mod roles;
pub mod sessions;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};

use std::sync::Arc;

use crate::http::LoggedUser;
use crate::http::error::ApiError;
use crate::http::idempotency::Caller;
use crate::platform::clock::Millis;
use crate::platform::clock::SharedClock;
use crate::platform::db::Db;
use crate::platform::ids::{SessionId, UserId};
use jwt::JwtKeys;
use roles::Role;

/// A caller with a valid access token whose session is still active.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub role: Role,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

fn bearer_token<'r>(req: &'r Request<'_>) -> Option<&'r str> {
    let value = req.headers().get_one("Authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// One piece of the state `app::build` manages for the guards.
fn managed<'r, T: Send + Sync + 'static>(req: &'r Request<'_>) -> Result<&'r T, ApiError> {
    req.rocket()
        .state::<T>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))
}

/// The claims of a genuine, unexpired access token.
fn verified_claims(req: &Request<'_>) -> Result<jwt::Claims, ApiError> {
    let keys = managed::<Arc<JwtKeys>>(req)?;
    let clock = managed::<SharedClock>(req)?;
    let token =
        bearer_token(req).ok_or(ApiError::Unauthorized("a bearer access token is required"))?;
    keys.verify(token, clock.now_secs())
        .map_err(|_| ApiError::Unauthorized("the access token is invalid or expired"))
}

fn session_ended() -> ApiError {
    ApiError::Unauthorized("the session has ended; log in again")
}

async fn authenticate(req: &Request<'_>) -> Result<AuthUser, ApiError> {
    let claims = verified_claims(req)?;
    let now = managed::<SharedClock>(req)?.now_ms();
    let (session_id, user_id) = (claims.sid.clone(), claims.sub.clone());
    // The role comes from the database, not the token, so a demotion applies at once.
    let role = managed::<Db>(req)?
        .read(move |c| {
            Ok::<_, ApiError>(sessions::active_session_user(
                c,
                &session_id,
                &user_id,
                now,
            )?)
        })
        .await?
        .ok_or_else(session_ended)?;
    Ok(AuthUser {
        user_id: claims.sub.into(),
        session_id: claims.sid.into(),
        role,
    })
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AuthUser {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let result = req
            .local_cache_async(async {
                authenticate(req).await.map_err(|e| {
                    if let ApiError::Internal(cause) = &e {
                        tracing::error!(
                            error = format!("{cause:#}"),
                            "authentication failed on an internal error"
                        );
                    }
                    e.status()
                })
            })
            .await;
        match result {
            Ok(user) => {
                req.local_cache(|| LoggedUser(Some(user.user_id.to_string())));
                Outcome::Success(user.clone())
            }
            Err(status) if *status == Status::Unauthorized => Outcome::Error((
                Status::Unauthorized,
                ApiError::Unauthorized("authentication failed"),
            )),
            Err(status) => Outcome::Error((
                *status,
                ApiError::Unavailable("authentication is unavailable".into()),
            )),
        }
    }
}

/// An authenticated caller with the admin role; anyone else gets 403. Under `/admin/api`
/// the caller is the admin console's session cookie (see [`console`]), anywhere else a
/// Bearer access token.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AdminUser {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        if console::is_console_path(req) {
            return console::admin_from_cookie(req).await;
        }
        match req.guard::<AuthUser>().await {
            Outcome::Success(user) if user.is_admin() => match mfa::admin_check(req, &user).await {
                Ok(()) => Outcome::Success(AdminUser(user)),
                Err(e) => Outcome::Error(crate::http::error::guard_failure(req, e)),
            },
            Outcome::Success(_) => Outcome::Error((Status::Forbidden, ApiError::Forbidden)),
            Outcome::Error(e) => Outcome::Error(e),
            Outcome::Forward(s) => Outcome::Forward(s),
        }
    }
}

/// A caller with a genuine, unexpired access token whose session is not checked yet.
/// The hottest routes check it inside their own database call, one thread hop instead
/// of two; the user id is reachable only through [`SessionToken::check`], so a handler
/// cannot act for the caller without checking.
#[derive(Clone)]
pub struct SessionToken {
    user_id: UserId,
    session_id: SessionId,
}

impl SessionToken {
    /// The caller, if the session is still active, checked on `conn` (the handler's own
    /// read connection or write transaction).
    pub fn check(&self, conn: &rusqlite::Connection, now: Millis) -> Result<AuthUser, ApiError> {
        let role = sessions::active_session_user(conn, &self.session_id, &self.user_id, now)?
            .ok_or_else(session_ended)?;
        Ok(AuthUser {
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            role,
        })
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SessionToken {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match verified_claims(req) {
            Ok(claims) => {
                req.local_cache(|| LoggedUser(Some(claims.sub.clone())));
                Outcome::Success(SessionToken {
                    user_id: claims.sub.into(),
                    session_id: claims.sid.into(),
                })
            }
            Err(e) => Outcome::Error((e.status(), e)),
        }
    }
}

/// The guard already checked the session.
impl Caller for AuthUser {
    fn user_id_on(&self, _: &rusqlite::Connection, _: Millis) -> Result<String, ApiError> {
        Ok(self.user_id.to_string())
    }
}

impl Caller for AdminUser {
    fn user_id_on(&self, conn: &rusqlite::Connection, now: Millis) -> Result<String, ApiError> {
        self.0.user_id_on(conn, now)
    }
}

/// The session is checked on the lookup's own connection.
impl Caller for SessionToken {
    fn user_id_on(&self, conn: &rusqlite::Connection, now: Millis) -> Result<String, ApiError> {
        Ok(self.check(conn, now)?.user_id.to_string())
    }
}
