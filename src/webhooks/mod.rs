//! Stripe webhooks: verify each delivery, store it once by its Stripe id, and let a worker hand stored events to the billing handler with retries.
//!
//! The intake (`POST /api/webhooks/stripe`) only verifies and stores, then answers 200 at
//! once, so Stripe never waits on our processing. The worker (`worker.rs`) claims due
//! events oldest first and calls the registered [`EventHandler`] outside any database
//! transaction; an error retries with exponential backoff and jitter until
//! `webhook_max_attempts`, then the event is `failed` and can be requeued from the API
//! (`POST /api/webhooks/retry`) or the CLI (`audiostudio webhooks replay`).
//!
//! What an event *means* is not decided here: billing registers its handler as
//! `rocket.manage(webhooks::Webhooks::new(Arc::new(handler)))`. Until one is registered
//! the default [`IgnoreAll`] marks every event `ignored` (each can be requeued later).

pub mod api;
pub mod envelope;
pub mod handler;
pub mod ops;
pub mod signature;
pub mod status;
pub mod store;
pub mod worker;

use rocket::{Build, Rocket, routes};
use utoipa::OpenApi;

pub use api::receive::DEFAULT_BODY_LIMIT_MIB;
pub use envelope::key_livemode;
pub use handler::{
    BoxFuture, EventHandler, Handled, HandlerError, IgnoreAll, StoredEvent, Webhooks,
};
pub use status::EventStatus;
pub use worker::spawn_worker;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(api::receive::receive_stripe, api::retry::retry, api::status::status),
    components(schemas(api::receive::Received, api::retry::RetryRequest, api::retry::RetryResponse, store::WebhookStatus, store::StatusCounts, store::LastError)),
    tags((name = "webhooks", description = "Stripe webhook intake (signed, no login) and its operation (admins)"))
)]
pub struct ApiDoc;

/// Mounts the intake and its admin routes under `/api/webhooks`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket.mount(
        "/api/webhooks",
        routes![
            api::receive::receive_stripe,
            api::retry::retry,
            api::status::status
        ],
    )
}
