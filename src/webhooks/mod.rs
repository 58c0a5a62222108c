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

pub mod signature;
pub mod store;
pub mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use rocket::data::{Data, Limits, ToByteUnit};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::Json;
use rocket::{Build, Orbit, Rocket, State, get, post, routes};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use utoipa::{OpenApi, ToSchema};

use crate::auth::AdminUser;
use crate::http::ClientInfo;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::audit::Actor;
use crate::platform::clock::Millis;
use crate::platform::config::Settings;
use crate::state::App;
use store::{NewEvent, Requeue, RequeueError, WebhookStatus};

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(receive_stripe, retry, status),
    components(schemas(Received, RetryRequest, RetryResponse, WebhookStatus, store::StatusCounts, store::LastError)),
    tags((name = "webhooks", description = "Stripe webhook intake (signed, no login) and its operation (admins)"))
)]
pub struct ApiDoc;

/// Mounts the intake and its admin routes under `/api/webhooks`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket.mount("/api/webhooks", routes![receive_stripe, retry, status])
}

/// Largest webhook body accepted, unless Rocket's `limits.stripe-webhook` says otherwise.
/// Stripe events are often larger than Rocket's 8 KiB `bytes` default.
pub const DEFAULT_BODY_LIMIT_MIB: u64 = 1;

// ---------------------------------------------------------------------------------------
// The seam billing plugs into.

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
    handler: RwLock<Arc<dyn EventHandler>>,
    wakeup: Notify,
}

impl Webhooks {
    pub fn new(handler: Arc<dyn EventHandler>) -> Webhooks {
        Webhooks {
            inner: Arc::new(Shared {
                handler: RwLock::new(handler),
                wakeup: Notify::new(),
            }),
        }
    }

    /// Replaces the handler; the worker uses it from its next event on.
    pub fn set_handler(&self, handler: Arc<dyn EventHandler>) {
        *self
            .inner
            .handler
            .write()
            .unwrap_or_else(|e| e.into_inner()) = handler;
    }

    pub fn handler(&self) -> Arc<dyn EventHandler> {
        self.inner
            .handler
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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

/// Starts the processing worker; called once from `start_workers`. It uses the managed
/// [`Webhooks`] (and so its handler); without one, a private default whose handler
/// ignores every event and which only the periodic tick wakes.
pub fn spawn_worker(rocket: &Rocket<Orbit>) {
    let Some(app) = rocket.state::<App>() else {
        return;
    };
    let webhooks = rocket.state::<Webhooks>().cloned().unwrap_or_else(|| {
        tracing::info!(
            "no webhook event handler registered: stored Stripe events will be marked ignored"
        );
        Webhooks::default()
    });
    tokio::spawn(worker::run(
        app.db.clone(),
        app.clock.clone(),
        app.settings.webhook_max_attempts,
        webhooks,
        rocket.shutdown(),
    ));
}

/// The managed [`Webhooks`], if any, for waking the worker.
struct Wakeup(Option<Webhooks>);

impl Wakeup {
    fn wake(&self) {
        if let Some(webhooks) = &self.0 {
            webhooks.wake();
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Wakeup {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Wakeup(req.rocket().state::<Webhooks>().cloned()))
    }
}

// ---------------------------------------------------------------------------------------
// Intake.

/// The `Stripe-Signature` header: absent, one value, or (refused) several.
struct StripeSignature(Result<Option<String>, ()>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for StripeSignature {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let mut values = req.headers().get("Stripe-Signature");
        let first = values.next().map(str::to_owned);
        Outcome::Success(StripeSignature(match values.next() {
            Some(_) => Err(()),
            None => Ok(first),
        }))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Received {
    pub received: bool,
    /// True when this event id was already stored: nothing was stored again.
    pub duplicate: bool,
}

/// The envelope fields the intake stores next to the raw body.
#[derive(Debug)]
struct Envelope {
    id: String,
    event_type: String,
    livemode: bool,
    api_version: Option<String>,
    object_id: Option<String>,
}

fn short_text(value: Option<&Value>, field: &str) -> Result<String, String> {
    match value.and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control) => {
            Ok(s.to_owned())
        }
        _ => Err(format!(
            "`{field}` must be a non-empty string of at most 255 bytes"
        )),
    }
}

fn parse_envelope(body: &str) -> Result<Envelope, String> {
    let event: Value =
        serde_json::from_str(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    if !event.is_object() {
        return Err("the body is not a Stripe event object".into());
    }
    let object = event
        .pointer("/data/object")
        .filter(|o| o.is_object())
        .ok_or("`data.object` must be an object")?;
    Ok(Envelope {
        id: short_text(event.get("id"), "id")?,
        event_type: short_text(event.get("type"), "type")?,
        livemode: event
            .get("livemode")
            .and_then(Value::as_bool)
            .ok_or("`livemode` must be true or false")?,
        api_version: match event.get("api_version") {
            None | Some(Value::Null) => None,
            Some(v) => Some(short_text(Some(v), "api_version")?),
        },
        object_id: match object.get("id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(short_text(Some(v), "data.object.id")?),
        },
    })
}

/// The mode of the configured secret key: `Some(true)` for live, `Some(false)` for test,
/// `None` when no key (or an unrecognised one) is set, which accepts both modes.
pub fn key_livemode(settings: &Settings) -> Option<bool> {
    let key = settings.stripe_secret_key.as_ref()?;
    let key = key.expose_secret();
    if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        Some(true)
    } else if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
        Some(false)
    } else {
        None
    }
}

fn mode(live: bool) -> &'static str {
    if live { "live" } else { "test" }
}

/// Receive a Stripe event. Verified against `Stripe-Signature` on the raw body, stored
/// once by its Stripe id, processed later by the worker. No login: the signature is the
/// authentication.
#[utoipa::path(post, path = "/api/webhooks/stripe", tag = "webhooks",
    request_body(content = Object, description = "A Stripe event, byte for byte as Stripe sent it (at most 1 MiB)", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">`, possibly several `v1`")),
    responses(
        (status = 200, description = "Stored (or already stored: `duplicate`)", body = Received),
        (status = 400, description = "Missing or wrong signature, timestamp outside the tolerance, or not a Stripe event; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured (no STRIPE_WEBHOOK_SECRET)", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/stripe", data = "<body>")]
async fn receive_stripe(
    app: &State<App>,
    wakeup: Wakeup,
    sent_signature: StripeSignature,
    limits: &Limits,
    body: Data<'_>,
) -> ApiResult<Json<Received>> {
    let configured = app
        .settings
        .stripe_webhook_secret
        .as_ref()
        .map(|s| s.expose_secret().to_owned())
        .unwrap_or_default();
    let secrets = signature::secrets(&configured);
    if secrets.is_empty() {
        return Err(ApiError::Unavailable(
            "billing not configured: STRIPE_WEBHOOK_SECRET is not set".into(),
        ));
    }
    let limit = limits
        .get("stripe-webhook")
        .unwrap_or(DEFAULT_BODY_LIMIT_MIB.mebibytes());
    let body = body
        .open(limit)
        .into_bytes()
        .await
        .map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
    if !body.is_complete() {
        return Err(ApiError::PayloadTooLarge);
    }
    let body = body.into_inner();
    let header = sent_signature
        .0
        .map_err(|()| ApiError::BadRequest("send exactly one Stripe-Signature header".into()))?;
    signature::verify(
        header.as_deref(),
        &body,
        &secrets,
        app.clock.now_secs(),
        app.settings.stripe_webhook_tolerance_secs,
    )
    .map_err(|e| {
        // Worth a line: a wrong or rolled secret shows up here first.
        tracing::warn!(reason = %e, "refused a Stripe webhook delivery");
        ApiError::BadRequest(e.to_string())
    })?;
    let text = String::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8 JSON".into()))?;
    let envelope = parse_envelope(&text).map_err(ApiError::BadRequest)?;
    let ignore = match key_livemode(&app.settings) {
        Some(key_live)
            if key_live != envelope.livemode && !app.settings.stripe_accept_other_mode =>
        {
            Some(format!(
                "a {} mode event, but STRIPE_SECRET_KEY is a {} mode key (set stripe_accept_other_mode to process it)",
                mode(envelope.livemode),
                mode(key_live)
            ))
        }
        _ => None,
    };
    let pending = ignore.is_none();
    let now = app.clock.now_ms();
    let stored = app
        .db
        .write(move |tx| {
            store::insert(
                tx,
                &NewEvent {
                    id: &envelope.id,
                    event_type: &envelope.event_type,
                    payload: &text,
                    livemode: envelope.livemode,
                    api_version: envelope.api_version.as_deref(),
                    object_id: envelope.object_id.as_deref(),
                    ignore,
                },
                now,
            )
            .map_err(ApiError::from)
        })
        .await?;
    if stored && pending {
        wakeup.wake();
    }
    Ok(Json(Received {
        received: true,
        duplicate: !stored,
    }))
}

// ---------------------------------------------------------------------------------------
// Operation (admins).

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// One failed or ignored event; absent: every failed event.
    pub event_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetryResponse {
    /// How many events are pending again.
    pub requeued: usize,
}

impl From<RequeueError> for ApiError {
    fn from(e: RequeueError) -> Self {
        match e {
            RequeueError::NotFound(_) => ApiError::NotFound,
            RequeueError::NotRetryable { .. } => ApiError::Conflict(e.to_string()),
            RequeueError::Sqlite(e) => ApiError::from(e),
            RequeueError::Db(e) => ApiError::from(e),
        }
    }
}

/// Requeue one failed or ignored event, or every failed one, for the worker to process
/// again now. Attempts restart from 0; the last error stays visible until the next
/// attempt. Audited as `webhooks.retry`. An empty body means `{}`.
#[utoipa::path(post, path = "/api/webhooks/retry", tag = "webhooks", security(("bearer" = [])), request_body = RetryRequest,
    responses(
        (status = 200, description = "Requeued", body = RetryResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event is pending, processing or processed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/retry", data = "<body>")]
async fn retry(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    wakeup: Wakeup,
    body: Data<'_>,
) -> ApiResult<Json<RetryResponse>> {
    let body = body
        .open(16.kibibytes())
        .into_bytes()
        .await
        .map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
    if !body.is_complete() {
        return Err(ApiError::PayloadTooLarge);
    }
    let request: RetryRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RetryRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                ApiError::Unprocessable(format!("the body does not have the expected shape: {e}"))
            }
            _ => ApiError::BadRequest(format!("the body is not valid JSON: {e}")),
        })?
    };
    if let Some(id) = &request.event_id
        && (id.is_empty() || id.len() > 255)
    {
        return Err(ApiError::field("event_id", "must be a Stripe event id"));
    }
    let actor = Actor::user(&admin.0.user_id, &client);
    let now = app.clock.now_ms();
    let requeued = app
        .db
        .write(move |tx| {
            let target = match &request.event_id {
                Some(id) => Requeue::One(id),
                None => Requeue::AllFailed,
            };
            store::requeue(tx, target, &actor, now).map_err(ApiError::from)
        })
        .await?;
    if requeued > 0 {
        wakeup.wake();
    }
    Ok(Json(RetryResponse { requeued }))
}

/// Counts by status and by type, the last receipt, the oldest unprocessed event's age and
/// the newest unresolved error.
#[utoipa::path(get, path = "/api/webhooks/status", tag = "webhooks", security(("bearer" = [])),
    responses(
        (status = 200, description = "The state of webhook processing", body = WebhookStatus),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/status")]
async fn status(app: &State<App>, _admin: AdminUser) -> ApiResult<Json<WebhookStatus>> {
    let now = app.clock.now_ms();
    let status = app
        .db
        .read(move |c| store::status(c, now).map_err(ApiError::from))
        .await?;
    Ok(Json(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let ok = parse_envelope(
            r#"{"id":"evt_1","type":"invoice.paid","livemode":false,"api_version":"2024-06-20","data":{"object":{"id":"in_1"}}}"#,
        )
        .unwrap();
        assert_eq!(ok.id, "evt_1");
        assert_eq!(ok.event_type, "invoice.paid");
        assert_eq!(ok.object_id.as_deref(), Some("in_1"));
        assert_eq!(ok.api_version.as_deref(), Some("2024-06-20"));
        assert!(!ok.livemode);
        for bad in [
            "[]",
            "nope",
            r#"{"type":"x","livemode":false,"data":{"object":{}}}"#,
            r#"{"id":"evt_1","livemode":false,"data":{"object":{}}}"#,
            r#"{"id":"evt_1","type":"x","data":{"object":{}}}"#,
            r#"{"id":"evt_1","type":"x","livemode":"no","data":{"object":{}}}"#,
            r#"{"id":"evt_1","type":"x","livemode":false}"#,
            r#"{"id":"","type":"x","livemode":false,"data":{"object":{}}}"#,
            r#"{"id":"evt_1","type":"x","livemode":false,"data":{"object":{"id":5}}}"#,
        ] {
            assert!(parse_envelope(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_prefix_gives_the_mode() {
        let with = |key: Option<&str>| Settings {
            stripe_secret_key: key.map(|k| k.to_owned().into()),
            ..Settings::default()
        };
        assert_eq!(key_livemode(&with(Some("sk_live_abc"))), Some(true));
        assert_eq!(key_livemode(&with(Some("rk_test_abc"))), Some(false));
        assert_eq!(key_livemode(&with(Some("whatever"))), None);
        assert_eq!(key_livemode(&with(None)), None);
    }
}
