//! Billing through Stripe: plans and packs, Checkout and the Billing Portal, subscription changes.
//!
//! Handlers never hold a database transaction across a Stripe call: they read what they
//! need, call Stripe (idempotently, with keys derived from our ids), then write what
//! Stripe answered. Without a secret key every route that needs Stripe answers 503.

pub mod api;
pub mod catalog;
pub mod emails;
pub mod events;
pub mod ops;
pub mod redirects;
mod seed;
pub mod status;
pub mod store;
pub mod stripe;

use rocket::{Build, Rocket, Route, routes};
use utoipa::OpenApi;

pub use api::{ensure_customer, stripe_for};
pub use redirects::{allowed_origins, check_redirect, origin, with_session_placeholder};
pub use status::{CheckoutStatus, SubscriptionStatus};

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        api::plans::list_plans,
        api::current::current,
        api::checkout::checkout,
        api::checkout_status::checkout_status,
        api::portal::portal,
        api::cancel::cancel,
        api::resume::resume,
        api::update::update,
        api::history::history,
        api::purchase::purchase,
    ),
    components(schemas(
        store::PlanView,
        store::ChangeView,
        api::plans::PlansResponse,
        api::current::CurrentSubscription,
        api::checkout::CheckoutRequest,
        api::checkout_session::CheckoutResponse,
        api::checkout_status::CheckoutStatus,
        api::portal::PortalRequest,
        api::portal::PortalResponse,
        api::cancel::CancelRequest,
        api::update::UpdateRequest,
        api::history::HistoryResponse,
        api::history::PeriodView,
        api::history::InvoiceView,
        api::purchase::PurchaseRequest,
    )),
    tags((name = "billing", description = "Plans, subscriptions and token-pack purchases through Stripe; 503 when billing is not configured"))
)]
pub struct ApiDoc;

/// Mounts the subscription routes under `/api/subscriptions` and pack purchase under `/api/tokens`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket
        .mount("/api/subscriptions", routes())
        .mount("/api/tokens", routes![api::purchase::purchase])
}

fn routes() -> Vec<Route> {
    routes![
        api::plans::list_plans,
        api::current::current,
        api::checkout::checkout,
        api::checkout_status::checkout_status,
        api::portal::portal,
        api::cancel::cancel,
        api::resume::resume,
        api::update::update,
        api::history::history,
    ]
}
