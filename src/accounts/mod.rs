//! Accounts over HTTP: registration, login, sessions, profile, password and email flows under `/api/auth`.

pub mod api;
pub mod emails;
pub mod lockout;
pub mod mfa;
pub mod one_time;
pub mod ops;
pub mod store;
pub mod validate;

use rocket::{Build, Rocket, Route, routes};
use utoipa::OpenApi;

use api::{
    change_password, login, logout, mfa_disable, mfa_enrol, mfa_verify, password_reset, profile,
    refresh, register, sessions, unlock, verify_email,
};

/// Mounts the account routes under `/api/auth`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    // Read by the admin guard; without the settings (never in practice) it stays required.
    let required = rocket
        .state::<crate::state::App>()
        .is_none_or(|app| app.settings.auth.mfa_required_for_admins);
    rocket
        .manage(crate::auth::mfa::AdminMfaPolicy { required })
        .manage(lockout::ShadowCounters::default())
        .mount("/api/auth", routes())
}

fn routes() -> Vec<Route> {
    routes![
        register::register,
        login::login,
        refresh::refresh,
        logout::logout,
        logout::logout_all,
        sessions::list_sessions,
        sessions::revoke_session,
        profile::get_profile,
        profile::update_profile,
        change_password::change_password,
        password_reset::request_password_reset,
        password_reset::reset_password,
        verify_email::verify_email,
        verify_email::resend_verification,
        unlock::unlock_account,
        mfa_enrol::setup,
        mfa_enrol::confirm,
        mfa_disable::disable,
        mfa_verify::verify
    ]
}

/// The account paths of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        register::register,
        login::login,
        refresh::refresh,
        logout::logout,
        logout::logout_all,
        sessions::list_sessions,
        sessions::revoke_session,
        profile::get_profile,
        profile::update_profile,
        change_password::change_password,
        password_reset::request_password_reset,
        password_reset::reset_password,
        verify_email::verify_email,
        verify_email::resend_verification,
        unlock::unlock_account,
        mfa_enrol::setup,
        mfa_enrol::confirm,
        mfa_disable::disable,
        mfa_verify::verify,
    ),
    components(schemas(crate::auth::sessions::SessionView, crate::auth::mfa::Factor))
)]
pub struct ApiDoc;
