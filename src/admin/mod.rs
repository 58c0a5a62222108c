//! The admin API and the embedded admin console. Every admin route is mounted twice,
//! the same handler under `/api/admin` (a Bearer access token of an admin) and under
//! `/admin/api` (the console's session cookie), through the one admin guard
//! (`auth::AdminUser`). The console's own sign-in lives only under `/admin/api`.

pub mod api;
pub mod audit;
pub mod billing;
pub mod claims;
pub mod overview;
pub mod store;
pub mod ui;
pub mod users;
pub mod webhooks;

use rocket::{Build, Rocket, Route, routes};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::auth::console::{self, ConsolePolicy, origin_of};
use crate::state::App;
use api::{
    audit as audit_routes, backups, claims as claim_routes, overview as overview_routes, session,
    session_mfa, shortfalls, token_changes, user_actions, user_mail, user_sessions, user_tokens,
    users as user_routes, webhooks as webhook_routes,
};

/// The routes of this feature under `/api/admin` (tokens mounts its own there).
fn own_routes() -> Vec<Route> {
    routes![
        user_routes::list_users,
        user_routes::get_user,
        user_actions::disable,
        user_actions::enable,
        user_actions::set_role,
        user_actions::unlock,
        user_actions::verify_email,
        user_actions::mfa_reset,
        user_mail::resend_verification,
        user_mail::password_reset,
        user_sessions::list_sessions,
        user_sessions::revoke_session,
        user_sessions::revoke_all_sessions,
        user_sessions::activity,
        user_tokens::tokens,
        user_tokens::ledger_page,
        user_tokens::lots,
        user_tokens::holds,
        user_tokens::billing,
        token_changes::grant,
        token_changes::adjust,
        token_changes::release,
        shortfalls::list_shortfalls,
        claim_routes::queue,
        claim_routes::approve,
        claim_routes::reject,
        webhook_routes::list,
        webhook_routes::detail,
        webhook_routes::replay,
        webhook_routes::replay_failed,
        audit_routes::list,
        audit_routes::one,
        audit_routes::verify_chain,
        overview_routes::get_overview,
        overview_routes::get_system,
        overview_routes::ledger_check,
        backups::create,
        backups::list,
        backups::download,
    ]
}

/// Every admin route, as the console reaches it under `/admin/api`.
fn console_routes() -> Vec<Route> {
    let mut routes = own_routes();
    routes.extend(crate::tokens::api::admin_routes());
    routes.extend(routes![
        session::console_login,
        session::console_logout,
        session::console_me,
        session_mfa::console_login_verify,
        session_mfa::console_mfa_setup,
        session_mfa::console_mfa_confirm,
    ]);
    routes
}

fn policy(app: &App) -> ConsolePolicy {
    let secs = |s: u64| {
        i64::try_from(s)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000)
    };
    ConsolePolicy {
        public_origin: origin_of(&app.settings.server.public_base_url),
        idle_ms: secs(app.settings.auth.admin_session_idle_timeout_secs),
        absolute_ms: secs(app.settings.auth.admin_session_absolute_timeout_secs),
    }
}

/// Mounts the admin API under `/api/admin` and `/admin/api`, and the console under `/admin`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    let policy = rocket.state::<App>().map(policy);
    let rocket = match policy {
        Some(policy) => rocket.manage(policy),
        None => rocket,
    };
    rocket
        .manage(overview::LastLedgerCheck::default())
        .mount("/api/admin", own_routes())
        .mount(console::BASE, console_routes())
        .mount("/admin", routes![ui::ui_index, ui::ui_asset])
}

/// The admin paths of the OpenAPI document (the `/api/admin` variants; each is also
/// served under `/admin/api` for the console's cookie).
#[derive(OpenApi)]
#[openapi(
    paths(
        user_routes::list_users,
        user_routes::get_user,
        user_actions::disable,
        user_actions::enable,
        user_actions::set_role,
        user_actions::unlock,
        user_actions::verify_email,
        user_actions::mfa_reset,
        user_mail::resend_verification,
        user_mail::password_reset,
        user_sessions::list_sessions,
        user_sessions::revoke_session,
        user_sessions::revoke_all_sessions,
        user_sessions::activity,
        user_tokens::tokens,
        user_tokens::ledger_page,
        user_tokens::lots,
        user_tokens::holds,
        user_tokens::billing,
        token_changes::grant,
        token_changes::adjust,
        token_changes::release,
        shortfalls::list_shortfalls,
        claim_routes::queue,
        claim_routes::approve,
        claim_routes::reject,
        webhook_routes::list,
        webhook_routes::detail,
        webhook_routes::replay,
        webhook_routes::replay_failed,
        audit_routes::list,
        audit_routes::one,
        audit_routes::verify_chain,
        overview_routes::get_overview,
        overview_routes::get_system,
        overview_routes::ledger_check,
        backups::create,
        backups::list,
        backups::download,
        session::console_login,
        session::console_logout,
        session::console_me,
        session_mfa::console_login_verify,
        session_mfa::console_mfa_setup,
        session_mfa::console_mfa_confirm,
    ),
    modifiers(&CookieAuth, &BodyProblems),
    tags((name = "admin console", description = "The console's sign-in; every /api/admin route is also served under /admin/api with the console cookie instead of a Bearer token"))
)]
pub struct ApiDoc;

/// The console's cookie as a security scheme (`admin_cookie`).
struct CookieAuth;

impl Modify for CookieAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                console::COOKIE,
                "The admin console's session (POST /admin/api/login); only under /admin/api",
            ))),
        );
    }
}

/// Every admin POST with a JSON body may also be answered 413 (over the body limit) and,
/// under `/api`, 415 (a body that is not JSON); the document says so for each.
struct BodyProblems;

impl Modify for BodyProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(post) = item.post.as_mut() else {
                continue;
            };
            if post.request_body.is_none() {
                continue;
            }
            let responses = &mut post.responses.responses;
            responses
                .entry("413".into())
                .or_insert_with(|| problem("The body is larger than the limit").into());
            if path.starts_with("/api/") {
                responses
                    .entry("415".into())
                    .or_insert_with(|| problem("The body is not declared JSON").into());
            }
        }
    }
}
