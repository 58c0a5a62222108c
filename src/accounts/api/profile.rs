//! `GET` and `PUT /api/auth/profile`: the caller's account and profile fields.

use rocket::serde::json::Json;
use rocket::{State, get, put};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::accounts::store::{self, ProfileChange, ProfileView};
use crate::accounts::validate;
use crate::auth::AuthUser;
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::validate::Checks;
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::state::App;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// Absent: unchanged; empty string: cleared.
    #[schema(
        max_length = 100,
        pattern = "^(?:|[^\\n\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\n\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*)$",
        example = "Ada"
    )]
    pub display_name: Option<String>,
    #[schema(
        max_length = 1000,
        pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
    )]
    pub bio: Option<String>,
    /// An absolute http(s) URL; empty string: cleared.
    #[schema(
        max_length = 2048,
        pattern = "^(?:|[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,4})?(?:/[A-Za-z0-9._~/-]*)?(?:\\?[A-Za-z0-9._~=&-]*)?)$",
        example = "https://cdn.example.com/ada.png"
    )]
    pub avatar_url: Option<String>,
    /// A JSON object of at most 16 KiB; replaces the stored one.
    #[schema(value_type = Option<Object>)]
    pub preferences: Option<Value>,
}

/// The caller's account and profile.
#[utoipa::path(get, path = "/api/auth/profile", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = ProfileView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/profile")]
pub async fn get_profile(app: &State<App>, user: AuthUser) -> ApiResult<Json<ProfileView>> {
    let profile = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::profile(c, &user.user_id)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(profile))
}

/// The change a valid request asks for; an empty display name or avatar URL clears it.
fn parse(body: UpdateProfileRequest) -> ApiResult<ProfileChange> {
    let mut checks = Checks::default();
    let display_name = checks.field(
        "display_name",
        filled(&body.display_name)
            .map(validate::display_name)
            .transpose(),
    );
    let bio = checks.field("bio", body.bio.as_deref().map(validate::bio).transpose());
    let avatar_url = checks.field(
        "avatar_url",
        filled(&body.avatar_url)
            .map(validate::avatar_url)
            .transpose(),
    );
    let preferences = checks.field(
        "preferences",
        body.preferences
            .as_ref()
            .map(validate::preferences)
            .transpose(),
    );
    checks.finish((display_name, bio, avatar_url, preferences))?;
    Ok(ProfileChange {
        display_name: body.display_name,
        bio: body.bio,
        avatar_url: body.avatar_url,
        preferences: body.preferences,
    })
}

/// A field given and not empty: empty means "clear", which needs no checking.
fn filled(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
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
pub async fn update_profile(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    client: ClientInfo,
    body: JsonBody<'_, UpdateProfileRequest>,
) -> ApiResult<Json<ProfileView>> {
    let change = parse(parse_body(body)?)?;
    let now = app.clock.now_ms();
    let profile = app
        .db
        .write(move |tx| {
            store::update_profile(tx, &user.user_id, &change, now)?;
            let event = Event::new("user.profile_updated").target("user", &user.user_id);
            audit::record(tx, now, &Actor::user(&user.user_id, &client), event)?;
            store::profile(tx, &user.user_id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(Json(profile))
}
