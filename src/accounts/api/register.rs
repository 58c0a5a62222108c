//! `POST /api/auth/register`: create an account, log it in and queue the verification email.

use rocket::response::status::Created;
use rocket::serde::json::Json;
use rocket::{State, post};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{AuthResponse, VERIFY_TOKEN_TTL_MS, auth_response, session_lifetime};
use crate::accounts::store::{self, NewUser, UserView};
use crate::accounts::{emails, one_time, validate};
use crate::auth::roles::Role;
use crate::auth::sessions::{self, Lifetime, NewSession};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::validate::Checks;
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::mail;
use crate::state::App;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(format = Email, max_length = 254, example = "ada@example.com")]
    pub email: String,
    #[schema(
        min_length = 8,
        max_length = 128,
        pattern = "^[\\s\\S]*\\S[\\s\\S]*$",
        example = "violet kettle 9 tambourine"
    )]
    pub password: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\n\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\n\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$",
        example = "Ada"
    )]
    pub display_name: Option<String>,
}

/// A registration that passed validation.
struct Registration {
    email: String,
    password: SecretString,
    display_name: Option<String>,
}

fn parse(body: &RegisterRequest) -> ApiResult<Registration> {
    let mut checks = Checks::default();
    let email = checks.field("email", validate::email(&body.email));
    let password = checks.field(
        "password",
        validate::account_password(&body.password, &body.email),
    );
    let display_name = checks.field(
        "display_name",
        body.display_name
            .as_deref()
            .map(validate::display_name)
            .transpose(),
    );
    let (email, password, display_name) = checks.finish((email, password, display_name))?;
    Ok(Registration {
        email,
        password,
        display_name,
    })
}

fn taken() -> ApiError {
    ApiError::Conflict("an account with this email already exists".into())
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
pub async fn register(
    app: &State<App>,
    client: ClientInfo,
    body: JsonBody<'_, RegisterRequest>,
) -> ApiResult<Created<Json<AuthResponse>>> {
    let body = parse_body(body)?;
    let registration = parse(&body)?;
    let lookup = registration.email.clone();
    if app
        .db
        .read(move |c| Ok::<_, ApiError>(store::email_taken(c, &lookup)?))
        .await?
    {
        return Err(taken());
    }
    let password_hash = app.hasher.hash(registration.password).await?;
    let now = app.clock.now_ms();
    let (ttl, base_url) = (
        session_lifetime(app),
        app.settings.server.public_base_url.clone(),
    );
    let (email, display_name) = (registration.email, registration.display_name);
    let (user, session) = app
        .db
        .write(move |tx| {
            let new = NewUser {
                email: &email,
                password_hash: &password_hash,
                role: Role::User,
                display_name: display_name.as_deref(),
                email_verified: false,
            };
            open_account(tx, &new, now, ttl, &client, &base_url)
        })
        .await?;
    app.mail_wakeup.notify_one();
    Ok(Created::new("/api/auth/profile").body(Json(auth_response(app, user, session)?)))
}

/// Stores the account, its first session and its verification email.
fn open_account(
    tx: &rusqlite::Transaction<'_>,
    new: &NewUser<'_>,
    now: Millis,
    lifetime: Lifetime,
    client: &ClientInfo,
    base_url: &str,
) -> ApiResult<(UserView, NewSession)> {
    let user_id = store::insert(tx, new, now)?.ok_or_else(taken)?;
    let session = sessions::create(tx, &user_id, now, lifetime, client)?;
    let token = one_time::issue(
        tx,
        &user_id,
        one_time::Purpose::VerifyEmail,
        now,
        VERIFY_TOKEN_TTL_MS,
    )?;
    mail::enqueue(tx, &emails::verification(base_url, new.email, &token), now)?;
    audit::record(
        tx,
        now,
        &Actor::user(&user_id, client),
        Event::new("user.registered").target("user", &user_id),
    )?;
    let user = store::find_user(tx, &user_id)?.ok_or(ApiError::NotFound)?;
    Ok((user, session))
}
