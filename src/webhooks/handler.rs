//! The seam billing plugs into: what a stored event looks like to its handler, what the handler answers, and the shared state that holds it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::platform::clock::Millis;

/// A boxed future that can cross threads, as [`EventHandler::handle`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stored event handed to the handler. `payload` is the whole event as Stripe sent it;
/// for subscriptions and invoices, fetch the current object from Stripe rather than
/// trusting an old payload (deliveries come late, twice and out of order).
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    /// Stripe's event id (`evt_...`).
    pub id: String,
    /// E.g. `invoice.paid`.
    pub event_type: String,
    pub payload: Value,
    /// `data.object.id`: the subscription, invoice, checkout session, charge, ...
    pub object_id: Option<String>,
    pub livemode: bool,
    pub api_version: Option<String>,
    /// Attempts so far, this one included (1 on the first).
    pub attempts: u32,
    /// When we received it, unix milliseconds.
    pub received_at: Millis,
}

/// What the handler did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Acted on (or found already applied: handlers are idempotent).
    Processed,
    /// Nothing to do for this event (e.g. a type we do not handle).
    Ignored,
}

/// Why handling failed.
#[derive(Debug)]
pub enum HandlerError {
    /// Worth trying again (Stripe unreachable, a bug fixed by the next deploy): retried
    /// with exponential backoff until `webhook_max_attempts`, then `failed`.
    Retry(anyhow::Error),
    /// Trying again cannot help: `failed` at once (still requeueable by an operator).
    Permanent(anyhow::Error),
}

impl HandlerError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, HandlerError::Permanent(_))
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandlerError::Retry(e) | HandlerError::Permanent(e) => write!(f, "{e:#}"),
        }
    }
}

/// `?` on an `anyhow::Result` gives a retryable error.
impl From<anyhow::Error> for HandlerError {
    fn from(e: anyhow::Error) -> Self {
        HandlerError::Retry(e)
    }
}

impl From<crate::platform::db::DbError> for HandlerError {
    fn from(e: crate::platform::db::DbError) -> Self {
        HandlerError::Retry(e.into())
    }
}

/// Gives stored events their meaning. Called by the worker outside any database
/// transaction, at least once per event (more after a crash or an error), in any order
/// relative to other events: implementations must be idempotent.
pub trait EventHandler: Send + Sync {
    fn handle<'a>(&'a self, event: &'a StoredEvent)
    -> BoxFuture<'a, Result<Handled, HandlerError>>;
}

/// The default handler: every event is `ignored`. Billing registers the real one.
pub struct IgnoreAll;

impl EventHandler for IgnoreAll {
    fn handle<'a>(&'a self, _: &'a StoredEvent) -> BoxFuture<'a, Result<Handled, HandlerError>> {
        Box::pin(async { Ok(Handled::Ignored) })
    }
}

/// The webhook machinery's shared state: the handler and the worker's wake-up. Cheap to
/// clone; manage it as Rocket state (`rocket.manage(Webhooks::new(handler))`) so the
/// intake and admin routes can wake the worker.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Shared>,
}

struct Shared {
    handler: Arc<dyn EventHandler>,
    wakeup: Notify,
}

impl Webhooks {
    pub fn new(handler: Arc<dyn EventHandler>) -> Webhooks {
        Webhooks {
            inner: Arc::new(Shared {
                handler,
                wakeup: Notify::new(),
            }),
        }
    }

    pub fn handler(&self) -> Arc<dyn EventHandler> {
        self.inner.handler.clone()
    }

    /// Makes the worker look for due events now rather than at its next tick.
    pub fn wake(&self) {
        self.inner.wakeup.notify_one();
    }

    pub(crate) async fn notified(&self) {
        self.inner.wakeup.notified().await;
    }
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks::new(Arc::new(IgnoreAll))
    }
}
