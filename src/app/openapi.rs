//! The OpenAPI document of every route, served at `/api/openapi.json` with a docs page at `/api/docs`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::error;
use crate::{accounts, admin, auth, health};

#[derive(OpenApi)]
#[openapi(
    info(title = "audiostudio API", description = "Accounts, tokens and billing of the audiostudio backend. Errors are application/problem+json (RFC 9457)."),
    paths(
        accounts::register,
        accounts::login,
        accounts::refresh,
        accounts::logout,
        accounts::logout_all,
        accounts::list_sessions,
        accounts::revoke_session,
        accounts::get_profile,
        accounts::update_profile,
        accounts::change_password,
        accounts::request_password_reset,
        accounts::reset_password,
        accounts::verify_email,
        accounts::resend_verification,
        admin::list_users,
        admin::list_shortfalls,
        health::health,
    ),
    components(schemas(error::Problem, auth::sessions::SessionView)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts, sessions and profiles"),
        (name = "admin", description = "Operator endpoints; admin role required"),
        (name = "tokens", description = "Balance, ledger, spends, holds and grants; mutating calls accept Idempotency-Key"),
        (name = "operations", description = "Health"),
    )
)]
pub struct ApiDoc;

/// The whole document: the core paths above plus those of billing and webhooks.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::tokens::ApiDoc::openapi());
    doc.merge(crate::billing::ApiDoc::openapi());
    doc.merge(crate::webhooks::ApiDoc::openapi());
    doc
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
