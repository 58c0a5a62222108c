//! Admin console sessions: an opaque cookie (`audiostudio_admin`, `Path=/admin`) whose
//! SHA-256 is stored in `admin_console_sessions`. Under `/admin/api` the admin guard
//! reads only this cookie (a Bearer token counts for nothing there, and the cookie counts
//! for nothing under `/api`). Every request re-reads the user: a session ends as soon as
//! its user is disabled, demoted or has another password than at sign-in, after the idle
//! timeout, at the absolute timeout, or when revoked. A request that may change anything
//! needs a JSON `Content-Type` and a same-origin `Origin` (or `Sec-Fetch-Site:
//! same-origin`); anything else is refused with 403 before the session is even read.

use rocket::http::{Method, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::mfa::{self, AdminMfaPolicy, Factor};
use super::roles::{Role, UserStatus};
use super::{AdminUser, AuthUser};
use crate::http::LoggedUser;
use crate::http::content_type::is_json;
use crate::http::error::ApiError;
use crate::platform::client::ClientInfo;
use crate::platform::clock::{Millis, SharedClock};
use crate::platform::db::Db;
use crate::platform::ids::{SessionId, UserId};
use crate::platform::secret_token::{new_opaque_token, token_hash};

/// The cookie's name.
pub const COOKIE: &str = "audiostudio_admin";
/// Where the console's JSON routes live; only there does the cookie count.
pub const BASE: &str = "/admin/api";
/// A session's `last_used_at` is moved at most this often (reads stay reads).
const TOUCH_EVERY_MS: Millis = 60_000;

/// How the console's sessions are kept, managed as Rocket state by the admin feature.
#[derive(Debug, Clone)]
pub struct ConsolePolicy {
    /// `scheme://host[:port]` of `public_base_url`.
    pub public_origin: String,
    pub idle_ms: Millis,
    pub absolute_ms: Millis,
}

/// The `Set-Cookie` value that signs the browser in with `token`.
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/admin; Secure")
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/admin; Secure; Max-Age=0")
}

/// `scheme://host[:port]` of an absolute URL, lower-cased.
pub fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{authority}").to_ascii_lowercase()
}

/// A live console session, as the guard found it.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub id: String,
    pub user_id: UserId,
    pub created_at: Millis,
    pub last_used_at: Millis,
    pub expires_at: Millis,
    pub idle_timeout_ms: Millis,
    /// How its admin signed in: the password alone, or with a second factor.
    pub factor: Factor,
    /// Whether its admin's account has two-factor sign-in on.
    pub mfa_enabled: bool,
}

impl ConsoleSession {
    /// When the session ends if it is not used before.
    pub fn idle_expires_at(&self) -> Millis {
        self.last_used_at
            .saturating_add(self.idle_timeout_ms)
            .min(self.expires_at)
    }
}

/// What the stored password hash is remembered as: a change of password ends the session.
fn password_digest(password_hash: &str) -> String {
    token_hash(password_hash)
}

/// Opens a console session for `user_id` (whose current hash is `password_hash`); the
/// token to put in the cookie and the session.
pub fn create(
    tx: &Transaction<'_>,
    user_id: &UserId,
    password_hash: &str,
    factor: Factor,
    policy: &ConsolePolicy,
    client: &ClientInfo,
    now: Millis,
) -> rusqlite::Result<(String, ConsoleSession)> {
    let (token, hash) = new_opaque_token();
    let session = ConsoleSession {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.clone(),
        created_at: now,
        last_used_at: now,
        expires_at: now.saturating_add(policy.absolute_ms),
        idle_timeout_ms: policy.idle_ms,
        factor,
        mfa_enabled: factor != Factor::Password,
    };
    tx.execute(
        "INSERT INTO admin_console_sessions (id, token_hash, user_id, password_digest, created_at, last_used_at, expires_at, idle_timeout_ms, ip, user_agent, factor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            session.id,
            hash,
            user_id,
            password_digest(password_hash),
            now,
            session.expires_at,
            session.idle_timeout_ms,
            client.ip.map(|ip| ip.to_string()),
            client.user_agent,
            factor
        ],
    )?;
    Ok((token, session))
}

/// The live session behind `token`: unrevoked, within both timeouts, its user an active
/// admin whose password is the one it signed in with.
pub fn live(
    conn: &Connection,
    token: &str,
    now: Millis,
) -> rusqlite::Result<Option<ConsoleSession>> {
    let found = conn
        .prepare_cached(
            "SELECT s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.idle_timeout_ms,
                    s.password_digest, u.password_hash, s.factor,
                    EXISTS (SELECT 1 FROM user_mfa m WHERE m.user_id = s.user_id AND m.confirmed_at IS NOT NULL)
             FROM admin_console_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2
               AND s.last_used_at + s.idle_timeout_ms > ?2 AND u.role = ?3 AND u.status = ?4",
        )?
        .query_row(
            params![token_hash(token), now, Role::Admin, UserStatus::Active],
            |r| {
                let session = ConsoleSession {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    created_at: r.get(2)?,
                    last_used_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    idle_timeout_ms: r.get(5)?,
                    factor: r.get(8)?,
                    mfa_enabled: r.get(9)?,
                };
                let (digest, hash): (String, String) = (r.get(6)?, r.get(7)?);
                Ok((session, digest == password_digest(&hash)))
            },
        )
        .optional()?;
    Ok(found.and_then(|(session, same_password)| same_password.then_some(session)))
}

/// Records a use of the session (the idle timeout restarts).
pub fn touch(tx: &Transaction<'_>, id: &str, now: Millis) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE admin_console_sessions SET last_used_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )?;
    Ok(())
}

/// Records that the session's admin has just proved a second factor in it (enrolment
/// from the console).
pub fn set_factor(tx: &Transaction<'_>, id: &str, factor: Factor) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE admin_console_sessions SET factor = ?2 WHERE id = ?1",
        params![id, factor],
    )?;
    Ok(())
}

/// Ends one session; whether it was live.
pub fn revoke(tx: &Transaction<'_>, id: &str, reason: &str, now: Millis) -> rusqlite::Result<bool> {
    let changed = tx.execute(
        "UPDATE admin_console_sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now, reason],
    )?;
    Ok(changed == 1)
}

/// Ends every console session of a user; how many were live.
pub fn revoke_all(
    tx: &Transaction<'_>,
    user_id: &UserId,
    reason: &str,
    now: Millis,
) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE admin_console_sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now, reason],
    )
}

/// Whether the request's path is under the console's JSON routes.
pub fn is_console_path(req: &Request<'_>) -> bool {
    let path = req.uri().path();
    path == BASE || path.starts_with("/admin/api/")
}

/// Whether a request that may change something is a same-origin JSON request: a JSON
/// `Content-Type`, no `Sec-Fetch-Site` but `same-origin`, and an `Origin` equal to the
/// public origin or to this request's own host (or, without `Origin`,
/// `Sec-Fetch-Site: same-origin`).
pub fn same_origin_json(req: &Request<'_>, public_origin: &str) -> bool {
    if !req.content_type().is_some_and(is_json) {
        return false;
    }
    let fetch_site = req.headers().get_one("Sec-Fetch-Site");
    if fetch_site.is_some_and(|site| !site.eq_ignore_ascii_case("same-origin")) {
        return false;
    }
    match req.headers().get_one("Origin") {
        Some(origin) => {
            let origin = origin.trim().to_ascii_lowercase();
            let host = req.headers().get_one("Host").map(str::to_ascii_lowercase);
            origin == public_origin
                || host.is_some_and(|host| origin.split_once("://").is_some_and(|(_, o)| o == host))
        }
        None => fetch_site.is_some(),
    }
}

/// The console cookie's value, read from the `Cookie` headers.
fn cookie_token(req: &Request<'_>) -> Option<String> {
    let prefix = format!("{COOKIE}=");
    req.headers()
        .get("Cookie")
        .flat_map(|header| header.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(prefix.as_str()).map(str::to_owned))
        .filter(|t| !t.is_empty() && t.len() <= 128)
}

fn safe_method(req: &Request<'_>) -> bool {
    matches!(req.method(), Method::Get | Method::Head | Method::Options)
}

fn state<'r, T: Send + Sync + 'static>(req: &'r Request<'_>) -> Result<&'r T, Status> {
    req.rocket().state::<T>().ok_or(Status::InternalServerError)
}

/// The session the request's cookie belongs to, its use recorded (at most once a minute).
async fn session_of(req: &Request<'_>) -> Result<ConsoleSession, Status> {
    let policy = state::<ConsolePolicy>(req)?;
    if !safe_method(req) && !same_origin_json(req, &policy.public_origin) {
        return Err(Status::Forbidden);
    }
    let token = cookie_token(req).ok_or(Status::Unauthorized)?;
    let (db, now) = (state::<Db>(req)?, state::<SharedClock>(req)?.now_ms());
    let session = db
        .read(move |c| Ok::<_, ApiError>(live(c, &token, now)?))
        .await
        .map_err(|e| e.status())?
        .ok_or(Status::Unauthorized)?;
    // A short idle timeout is still honoured: the use is recorded well within it.
    let every = TOUCH_EVERY_MS.min(session.idle_timeout_ms / 2);
    if now.saturating_sub(session.last_used_at) >= every {
        let id = session.id.clone();
        db.write(move |tx| Ok::<_, ApiError>(touch(tx, &id, now)?))
            .await
            .map_err(|e| e.status())?;
        return Ok(ConsoleSession {
            last_used_at: now,
            ..session
        });
    }
    Ok(session)
}

/// The console session a request was admitted with (cached by the guard).
struct Cached(Result<ConsoleSession, Status>);

/// The signed-in console session of a request, or the guard's failure.
async fn signed_in(req: &Request<'_>) -> Result<ConsoleSession, (Status, ApiError)> {
    let cached = req
        .local_cache_async(async { Cached(session_of(req).await) })
        .await;
    match &cached.0 {
        Ok(session) => {
            req.local_cache(|| LoggedUser(Some(session.user_id.to_string())));
            Ok(session.clone())
        }
        Err(status) if *status == Status::Forbidden => {
            Err((Status::Forbidden, ApiError::Forbidden))
        }
        Err(status) if *status == Status::Unauthorized => Err((
            Status::Unauthorized,
            ApiError::Unauthorized("sign in to the admin console"),
        )),
        Err(status) => Err((
            *status,
            ApiError::Unavailable("authentication is unavailable".into()),
        )),
    }
}

/// What the console tells an admin who signed in without a second factor while admins
/// need one: enrol first (the console's own enrolment screen), or sign in again with it.
pub const ENROL_IN_CONSOLE: &str = "enrol in two-factor authentication first (the console's Two-factor screen, or POST /admin/api/mfa/setup)";

/// `None` when the session may use the admin routes; otherwise why not.
pub fn mfa_refusal(session: &ConsoleSession, policy: AdminMfaPolicy) -> Option<&'static str> {
    if !policy.required || (session.mfa_enabled && session.factor != Factor::Password) {
        return None;
    }
    Some(if session.mfa_enabled {
        mfa::LOG_IN_AGAIN
    } else {
        ENROL_IN_CONSOLE
    })
}

/// The admin behind the console cookie of a request under `/admin/api`; with
/// `mfa_required_for_admins`, only from a session opened (or since confirmed) with a
/// second factor. The session alone (sign-out, `me`, enrolment) is [`Console`].
pub(super) async fn admin_from_cookie(req: &Request<'_>) -> Outcome<AdminUser, ApiError> {
    let session = match signed_in(req).await {
        Ok(session) => session,
        Err(e) => return Outcome::Error(e),
    };
    let policy = match state::<AdminMfaPolicy>(req) {
        Ok(policy) => *policy,
        Err(status) => {
            return Outcome::Error((status, ApiError::Unavailable("unavailable".into())));
        }
    };
    if let Some(detail) = mfa_refusal(&session, policy) {
        return Outcome::Error(crate::http::error::guard_failure(
            req,
            ApiError::MfaRequired(detail),
        ));
    }
    Outcome::Success(AdminUser(AuthUser {
        user_id: session.user_id.clone(),
        session_id: SessionId::from(session.id.clone()),
        role: Role::Admin,
    }))
}

/// The signed-in console session of a request under `/admin/api`, whatever its factor.
pub struct Console(pub ConsoleSession);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Console {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        if !is_console_path(req) {
            return Outcome::Error((Status::Unauthorized, ApiError::Unauthorized("console only")));
        }
        match signed_in(req).await {
            Ok(session) => Outcome::Success(Console(session)),
            Err(e) => Outcome::Error(e),
        }
    }
}

/// A same-origin JSON request (the console's sign-in, before any cookie exists).
pub struct SameOriginJson;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SameOriginJson {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match state::<ConsolePolicy>(req) {
            Ok(policy) if same_origin_json(req, &policy.public_origin) => {
                Outcome::Success(SameOriginJson)
            }
            Ok(_) => Outcome::Error((Status::Forbidden, ApiError::Forbidden)),
            Err(status) => Outcome::Error((status, ApiError::Unavailable("unavailable".into()))),
        }
    }
}
