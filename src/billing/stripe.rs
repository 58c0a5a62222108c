//! A small Stripe client over reqwest: form-encoded bodies, a pinned API version, idempotent and retried POSTs, typed errors.
//!
//! Use it outside database transactions only: read what you need, call Stripe, then write.
//! Every POST carries the `Idempotency-Key` its caller derives from our own ids, so the
//! client can retry it (429, 5xx, network errors; bounded, exponential backoff with
//! jitter) without ever doing the same thing twice. The secret key is never logged.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::http::error::ApiError;
use crate::platform::config::Settings;

/// The API version every request pins, so Stripe's answers keep the shape this code reads.
pub const API_VERSION: &str = "2024-06-20";

const USER_AGENT: &str = concat!("audiostudio/", env!("CARGO_PKG_VERSION"));

/// How hard the client tries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff; each retry doubles it, up to `max_delay`; jitter picks 50-100 % of it.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Per attempt, connection included.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            timeout: Duration::from_secs(20),
        }
    }
}

/// Stripe's error object (`{"error": {...}}`), with the HTTP status it came with.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiErrorBody {
    #[serde(skip)]
    pub status: u16,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    /// Stripe's `Request-Id` header, to quote to Stripe support.
    #[serde(skip)]
    pub request_id: Option<String>,
}

impl ApiErrorBody {
    fn text(&self) -> String {
        let mut text = self
            .message
            .clone()
            .unwrap_or_else(|| format!("Stripe answered {}", self.status));
        if let Some(code) = &self.code {
            text.push_str(&format!(" ({code})"));
        }
        text
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// No secret key is configured.
    #[error("billing is not configured: STRIPE_SECRET_KEY is not set")]
    NotConfigured,
    /// A card was declined or could not be charged (HTTP 402, `card_error`).
    #[error("the payment was declined: {}", .0.text())]
    Card(Box<ApiErrorBody>),
    /// The object does not exist (404, `resource_missing`).
    #[error("Stripe has no such object: {}", .0.text())]
    NotFound(Box<ApiErrorBody>),
    /// Stripe refused the request's parameters (400 `invalid_request_error`).
    #[error("Stripe refused the request: {}", .0.text())]
    InvalidRequest(Box<ApiErrorBody>),
    /// The Idempotency-Key was used with other parameters, or is in use right now.
    #[error("Stripe refused a repeated request: {}", .0.text())]
    Idempotency(Box<ApiErrorBody>),
    /// The secret key is wrong or lacks a permission (401/403).
    #[error("Stripe refused our API key: {}", .0.text())]
    Authentication(Box<ApiErrorBody>),
    /// Still rate limited after every attempt (429).
    #[error("Stripe is rate limiting us: {}", .0.text())]
    RateLimited(Box<ApiErrorBody>),
    /// Stripe failed (5xx) on every attempt, or answered an unexpected error.
    #[error("Stripe failed: {}", .0.text())]
    Server(Box<ApiErrorBody>),
    /// No answer in time on every attempt.
    #[error("Stripe did not answer in time")]
    Timeout,
    /// Could not reach Stripe on every attempt.
    #[error("Stripe is unreachable: {0}")]
    Unreachable(String),
    /// A 2xx answer that is not the object we asked for.
    #[error("Stripe's answer could not be read: {0}")]
    Decode(String),
    /// We were about to send something Stripe could never accept (a bad id).
    #[error("{0}")]
    Local(String),
}

impl StripeError {
    /// Whether trying the same call later may succeed (for the webhook worker's retries).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StripeError::RateLimited(_)
                | StripeError::Server(_)
                | StripeError::Timeout
                | StripeError::Unreachable(_)
                | StripeError::Decode(_)
        ) || matches!(self, StripeError::Idempotency(body) if body.status == 409)
    }
}

impl From<StripeError> for ApiError {
    fn from(e: StripeError) -> Self {
        match &e {
            StripeError::NotConfigured => ApiError::Unavailable(
                "billing is not configured on this server (no Stripe secret key)".into(),
            ),
            StripeError::Card(body) => ApiError::PaymentFailed(format!(
                "the payment was declined: {}",
                body.message.as_deref().unwrap_or("the card was declined")
            )),
            StripeError::NotFound(_) => ApiError::NotFound,
            StripeError::InvalidRequest(_) => ApiError::Unprocessable(e.to_string()),
            StripeError::Idempotency(_) => {
                ApiError::Conflict(format!("{e}; wait a moment and try again"))
            }
            StripeError::Authentication(_) => {
                tracing::error!(error = %e, "Stripe refused the configured secret key");
                ApiError::Unavailable(
                    "billing is misconfigured on this server (Stripe refused its API key)".into(),
                )
            }
            StripeError::RateLimited(_) | StripeError::Timeout | StripeError::Unreachable(_) => {
                tracing::warn!(error = %e, "Stripe unavailable");
                ApiError::Unavailable(format!(
                    "the payment provider is unavailable right now ({e}); try again shortly"
                ))
            }
            StripeError::Server(_) | StripeError::Decode(_) => {
                tracing::warn!(error = %e, "Stripe failed");
                ApiError::BadGateway(format!("the payment provider failed: {e}"))
            }
            StripeError::Local(message) => ApiError::Unprocessable(message.clone()),
        }
    }
}

pub type StripeResult<T> = Result<T, StripeError>;

/// Form parameters with Stripe's bracketed keys (`metadata[user_id]`, `line_items[0][price]`).
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    pub fn set(mut self, key: impl Into<String>, value: impl ToString) -> Params {
        self.0.push((key.into(), value.to_string()));
        self
    }

    pub fn set_opt(self, key: impl Into<String>, value: Option<impl ToString>) -> Params {
        match value {
            Some(value) => self.set(key, value),
            None => self,
        }
    }

    /// `metadata[key]=value` (or under another prefix, e.g. `subscription_data[metadata]`).
    pub fn metadata(self, prefix: &str, entries: &[(&str, &str)]) -> Params {
        entries
            .iter()
            .fold(self, |p, (k, v)| p.set(format!("{prefix}[{k}]"), v))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// A field that is an id, or the object itself when expanded: always read as the id.
fn id_or_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(id)) => Some(id),
        Some(Value::Object(object)) => object.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    })
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub type Metadata = BTreeMap<String, String>;

/// A page of a Stripe list.
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Recurring {
    #[serde(default)]
    pub interval: String,
    #[serde(default)]
    pub interval_count: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub id: String,
    #[serde(default, deserialize_with = "id_or_object")]
    pub product: Option<String>,
    #[serde(default)]
    pub unit_amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub recurring: Option<Recurring>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    /// `subscription` or `payment`.
    #[serde(default)]
    pub mode: Option<String>,
    /// `open`, `complete` or `expired`.
    #[serde(default)]
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    #[serde(default)]
    pub payment_status: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub customer: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub subscription: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_intent: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub invoice: Option<String>,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub livemode: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PortalSession {
    pub id: String,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItem {
    pub id: String,
    /// Stripe sends both `price` and the legacy `plan` (same id); older APIs and
    /// localstripe send only `plan`.
    #[serde(default)]
    pub price: Option<Price>,
    #[serde(default)]
    pub plan: Option<Price>,
    #[serde(default)]
    pub quantity: Option<i64>,
    /// Where newer API versions keep the period (unix seconds).
    #[serde(default)]
    pub current_period_start: Option<i64>,
    #[serde(default)]
    pub current_period_end: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    #[serde(default, deserialize_with = "id_or_object")]
    pub customer: Option<String>,
    /// `incomplete`, `incomplete_expired`, `trialing`, `active`, `past_due`, `canceled`, `unpaid` or `paused`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    #[serde(default)]
    pub cancel_at: Option<i64>,
    #[serde(default)]
    pub canceled_at: Option<i64>,
    #[serde(default)]
    pub ended_at: Option<i64>,
    #[serde(default)]
    current_period_start: Option<i64>,
    #[serde(default)]
    current_period_end: Option<i64>,
    #[serde(default = "empty_list")]
    pub items: List<SubscriptionItem>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub latest_invoice: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub livemode: bool,
}

fn empty_list<T>() -> List<T> {
    List {
        data: Vec::new(),
        has_more: false,
    }
}

impl Subscription {
    /// The current period in unix seconds, wherever this API version keeps it.
    pub fn period(&self) -> (Option<i64>, Option<i64>) {
        let item = self.items.data.first();
        (
            self.current_period_start
                .or_else(|| item.and_then(|i| i.current_period_start)),
            self.current_period_end
                .or_else(|| item.and_then(|i| i.current_period_end)),
        )
    }

    /// The price of the first item (our subscriptions have exactly one).
    pub fn price_id(&self) -> Option<&str> {
        let item = self.items.data.first()?;
        item.price
            .as_ref()
            .or(item.plan.as_ref())
            .map(|p| p.id.as_str())
    }

    /// Whether the subscription still gives access (and can be changed).
    pub fn is_live(&self) -> bool {
        is_live_status(&self.status)
    }
}

/// Statuses of a subscription that is still running: not ended, and not a first
/// payment that never succeeded (`incomplete`, `incomplete_expired`).
pub fn is_live_status(status: &str) -> bool {
    matches!(
        status,
        "active" | "trialing" | "past_due" | "unpaid" | "paused"
    )
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Period {
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub end: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceLine {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub period: Period,
    #[serde(default)]
    pub price: Option<Price>,
    /// The legacy name of `price`, all that localstripe sends.
    #[serde(default)]
    pub plan: Option<Price>,
    #[serde(default)]
    pub proration: bool,
    #[serde(default)]
    pub quantity: Option<i64>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub subscription: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    pub id: String,
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub customer: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub subscription: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub paid: Option<bool>,
    #[serde(default)]
    pub amount_due: i64,
    #[serde(default)]
    pub amount_paid: i64,
    #[serde(default)]
    pub amount_remaining: i64,
    #[serde(default)]
    pub currency: Option<String>,
    /// `subscription_create`, `subscription_cycle`, `subscription_update`, `manual`, ...
    #[serde(default)]
    pub billing_reason: Option<String>,
    #[serde(default)]
    pub hosted_invoice_url: Option<String>,
    #[serde(default)]
    pub invoice_pdf: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub charge: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub period_start: Option<i64>,
    #[serde(default)]
    pub period_end: Option<i64>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub lines: Option<List<InvoiceLine>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(default)]
    pub livemode: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Charge {
    pub id: String,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub amount_captured: Option<i64>,
    #[serde(default)]
    pub amount_refunded: i64,
    #[serde(default)]
    pub refunded: bool,
    #[serde(default)]
    pub paid: Option<bool>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub customer: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_intent: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub invoice: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(default)]
    pub livemode: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub amount_received: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub customer: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub latest_charge: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub invoice: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
}

/// What a new Checkout Session buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutMode {
    /// A recurring price: Stripe creates a subscription.
    Subscription,
    /// A one-time price: a single payment.
    Payment,
}

impl CheckoutMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutMode::Subscription => "subscription",
            CheckoutMode::Payment => "payment",
        }
    }
}

/// A Checkout Session to create.
#[derive(Debug, Clone)]
pub struct NewCheckoutSession<'a> {
    pub mode: CheckoutMode,
    pub customer: &'a str,
    pub price: &'a str,
    pub client_reference_id: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    /// Set on the session and copied onto the subscription or payment intent it creates.
    pub metadata: &'a [(&'a str, &'a str)],
}

/// `proration_behavior` of a plan change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proration {
    CreateProrations,
    None,
    AlwaysInvoice,
}

impl Proration {
    pub fn as_str(self) -> &'static str {
        match self {
            Proration::CreateProrations => "create_prorations",
            Proration::None => "none",
            Proration::AlwaysInvoice => "always_invoice",
        }
    }

    pub fn parse(text: &str) -> Option<Proration> {
        [
            Proration::CreateProrations,
            Proration::None,
            Proration::AlwaysInvoice,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

/// One shared connection pool for the process; base URL and key travel with each `Stripe`.
fn http() -> &'static reqwest::Client {
    static HTTP: OnceLock<reqwest::Client> = OnceLock::new();
    HTTP.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot build the Stripe HTTP client with its options; using the defaults");
                reqwest::Client::new()
            })
    })
}

/// A Stripe API client: cheap to build and to clone.
#[derive(Clone)]
pub struct Stripe {
    http: reqwest::Client,
    base: Url,
    key: SecretString,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("base", &self.base.as_str())
            .field("key", &"********")
            .field("policy", &self.policy)
            .finish()
    }
}

/// Ids go into URL paths: they must look like Stripe ids (`cus_...`, `sub_...`).
fn check_id(id: &str) -> StripeResult<&str> {
    if !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(id)
    } else {
        Err(StripeError::Local(format!("{id:?} is not a Stripe id")))
    }
}

impl Stripe {
    /// The client the settings describe; `NotConfigured` without a secret key.
    pub fn from_settings(settings: &Settings) -> StripeResult<Stripe> {
        let key = settings
            .stripe_secret_key
            .as_ref()
            .filter(|k| !k.expose_secret().trim().is_empty())
            .ok_or(StripeError::NotConfigured)?;
        Stripe::new(&settings.stripe_api_base, key.clone())
    }

    pub fn new(base: &str, key: SecretString) -> StripeResult<Stripe> {
        let mut base = Url::parse(base)
            .map_err(|e| StripeError::Local(format!("stripe_api_base {base:?}: {e}")))?;
        // So joining "v1/..." keeps any path prefix of the base.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Stripe {
            http: http().clone(),
            base,
            key,
            policy: RetryPolicy::default(),
        })
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Stripe {
        self.policy = RetryPolicy {
            max_attempts: policy.max_attempts.max(1),
            ..policy
        };
        self
    }

    /// Whether the key is a live-mode key (`sk_live_`, `rk_live_`).
    pub fn is_live(&self) -> bool {
        let key = self.key.expose_secret();
        key.starts_with("sk_live_") || key.starts_with("rk_live_")
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> StripeResult<Url> {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| StripeError::Local(format!("bad Stripe path {path:?}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// GET `path` (e.g. `v1/invoices`) with query parameters (bracketed keys allowed).
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> StripeResult<T> {
        let url = self.url(path, query)?;
        self.send(Method::GET, url, None, None).await
    }

    /// POST form `params` to `path` with an `Idempotency-Key` (required: retries must be safe).
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &Params,
        idempotency_key: &str,
    ) -> StripeResult<T> {
        if idempotency_key.is_empty() || idempotency_key.len() > 255 {
            return Err(StripeError::Local(
                "an Idempotency-Key must be 1 to 255 characters".into(),
            ));
        }
        let url = self.url(path, &[])?;
        self.send(Method::POST, url, Some(params), Some(idempotency_key))
            .await
    }

    /// DELETE `path` (idempotent by nature: Stripe takes no key for it).
    pub async fn delete<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &Params,
    ) -> StripeResult<T> {
        let url = self.url(path, &[])?;
        self.send(Method::DELETE, url, Some(params), None).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        params: Option<&Params>,
        idempotency_key: Option<&str>,
    ) -> StripeResult<T> {
        let mut attempt = 1;
        loop {
            let outcome = self
                .attempt(method.clone(), url.clone(), params, idempotency_key)
                .await;
            let (error, retry_hint) = match outcome {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let retry = match retry_hint {
                RetryHint::Never => false,
                RetryHint::Retryable(_) => attempt < self.policy.max_attempts,
            };
            if !retry {
                return Err(error);
            }
            let mut delay = self.backoff(attempt);
            if let RetryHint::Retryable(Some(after)) = retry_hint {
                delay = delay.max(after.min(self.policy.max_delay));
            }
            tracing::warn!(
                method = %method,
                path = url.path(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "Stripe call failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Exponential backoff with jitter: 50-100 % of base * 2^(attempt-1), capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .policy
            .base_delay
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.policy.max_delay);
        let millis = exp.as_millis() as u64;
        let jittered = if millis < 2 {
            millis
        } else {
            rand::rng().random_range(millis / 2..=millis)
        };
        Duration::from_millis(jittered)
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        params: Option<&Params>,
        idempotency_key: Option<&str>,
    ) -> Result<T, (StripeError, RetryHint)> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.key.expose_secret())
            .header("Stripe-Version", API_VERSION)
            .timeout(self.policy.timeout);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(params) = params {
            request = request.form(params.pairs());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Err((StripeError::Timeout, RetryHint::Retryable(None)));
            }
            Err(e) => {
                // Without the URL: it is ours, and the error text is enough.
                let text = e.without_url().to_string();
                return Err((StripeError::Unreachable(text), RetryHint::Retryable(None)));
            }
        };
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let request_id = header("request-id");
        let should_retry = header("stripe-should-retry");
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) if e.is_timeout() => {
                return Err((StripeError::Timeout, RetryHint::Retryable(None)));
            }
            Err(e) => {
                return Err((
                    StripeError::Unreachable(e.without_url().to_string()),
                    RetryHint::Retryable(None),
                ));
            }
        };
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                (
                    StripeError::Decode(format!("{e} (HTTP {status})")),
                    RetryHint::Never,
                )
            });
        }
        let mut error = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| serde_json::from_value::<ApiErrorBody>(v.get("error")?.clone()).ok())
            .unwrap_or_default();
        error.status = status.as_u16();
        error.request_id = request_id;
        let retryable = match should_retry.as_deref() {
            Some("true") => true,
            Some("false") => false,
            _ => {
                status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
                    // A request with the same Idempotency-Key is still in flight.
                    || status == StatusCode::CONFLICT
            }
        };
        let hint = if retryable {
            RetryHint::Retryable(retry_after)
        } else {
            RetryHint::Never
        };
        Err((classify(status, error), hint))
    }

    // ---- customers -------------------------------------------------------------------

    /// Creates a customer carrying our user id in its metadata.
    pub async fn create_customer(
        &self,
        email: &str,
        user_id: &str,
        idempotency_key: &str,
    ) -> StripeResult<Customer> {
        let params = Params::new()
            .set("email", email)
            .metadata("metadata", &[("user_id", user_id)]);
        self.post("v1/customers", &params, idempotency_key).await
    }

    pub async fn get_customer(&self, id: &str) -> StripeResult<Customer> {
        self.get(&format!("v1/customers/{}", check_id(id)?), &[])
            .await
    }

    // ---- catalogue -------------------------------------------------------------------

    pub async fn create_product(
        &self,
        name: &str,
        description: Option<&str>,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> StripeResult<Product> {
        let params = Params::new()
            .set("name", name)
            .set_opt("description", description.filter(|d| !d.is_empty()))
            .metadata("metadata", metadata);
        self.post("v1/products", &params, idempotency_key).await
    }

    /// A price of `unit_amount` (smallest currency unit); recurring every `interval`
    /// (`month`/`year`) when given, one-time otherwise.
    pub async fn create_price(
        &self,
        product: &str,
        unit_amount: i64,
        currency: &str,
        interval: Option<&str>,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> StripeResult<Price> {
        let params = Params::new()
            .set("product", product)
            .set("unit_amount", unit_amount)
            .set("currency", currency)
            .set_opt("recurring[interval]", interval)
            .metadata("metadata", metadata);
        self.post("v1/prices", &params, idempotency_key).await
    }

    // ---- checkout and portal -----------------------------------------------------------

    pub async fn create_checkout_session(
        &self,
        session: &NewCheckoutSession<'_>,
        idempotency_key: &str,
    ) -> StripeResult<CheckoutSession> {
        let mut params = Params::new()
            .set("mode", session.mode.as_str())
            .set("customer", session.customer)
            .set("client_reference_id", session.client_reference_id)
            .set("line_items[0][price]", session.price)
            .set("line_items[0][quantity]", 1)
            .set("success_url", session.success_url)
            .set("cancel_url", session.cancel_url)
            .metadata("metadata", session.metadata);
        params = match session.mode {
            CheckoutMode::Subscription => {
                params.metadata("subscription_data[metadata]", session.metadata)
            }
            CheckoutMode::Payment => {
                params.metadata("payment_intent_data[metadata]", session.metadata)
            }
        };
        self.post("v1/checkout/sessions", &params, idempotency_key)
            .await
    }

    pub async fn get_checkout_session(&self, id: &str) -> StripeResult<CheckoutSession> {
        self.get(&format!("v1/checkout/sessions/{}", check_id(id)?), &[])
            .await
    }

    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> StripeResult<PortalSession> {
        let params = Params::new()
            .set("customer", customer)
            .set("return_url", return_url);
        self.post("v1/billing_portal/sessions", &params, idempotency_key)
            .await
    }

    // ---- subscriptions -----------------------------------------------------------------

    pub async fn get_subscription(&self, id: &str) -> StripeResult<Subscription> {
        self.get(&format!("v1/subscriptions/{}", check_id(id)?), &[])
            .await
    }

    /// Every subscription of a customer, whatever its status (newest first, up to 100).
    pub async fn list_subscriptions(&self, customer: &str) -> StripeResult<List<Subscription>> {
        self.get(
            "v1/subscriptions",
            &[
                ("customer", check_id(customer)?),
                ("status", "all"),
                ("limit", "100"),
            ],
        )
        .await
    }

    /// Updates a subscription with raw parameters.
    pub async fn update_subscription(
        &self,
        id: &str,
        params: &Params,
        idempotency_key: &str,
    ) -> StripeResult<Subscription> {
        self.post(
            &format!("v1/subscriptions/{}", check_id(id)?),
            params,
            idempotency_key,
        )
        .await
    }

    /// Schedules the end of a subscription at its period's end (`true`), or undoes that (`false`: resume).
    pub async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        idempotency_key: &str,
    ) -> StripeResult<Subscription> {
        let params = Params::new().set("cancel_at_period_end", cancel);
        self.update_subscription(id, &params, idempotency_key).await
    }

    /// Moves the subscription's item `item_id` to `price`, prorating as asked. With
    /// `always_invoice` the prorated invoice is charged now and a declined card refuses
    /// the change (402) instead of leaving the subscription past due.
    pub async fn change_subscription_price(
        &self,
        id: &str,
        item_id: &str,
        price: &str,
        proration: Proration,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> StripeResult<Subscription> {
        let mut params = Params::new()
            .set("items[0][id]", item_id)
            .set("items[0][price]", price)
            .set("proration_behavior", proration.as_str())
            .set("cancel_at_period_end", false)
            .metadata("metadata", metadata);
        if proration == Proration::AlwaysInvoice {
            params = params.set("payment_behavior", "error_if_incomplete");
        }
        self.update_subscription(id, &params, idempotency_key).await
    }

    /// Ends a subscription now (no further invoices).
    pub async fn cancel_subscription(&self, id: &str) -> StripeResult<Subscription> {
        self.delete(
            &format!("v1/subscriptions/{}", check_id(id)?),
            &Params::new(),
        )
        .await
    }

    // ---- invoices, charges, payments ------------------------------------------------------

    /// A customer's invoices, newest first (`limit` 1 to 100).
    pub async fn list_invoices(&self, customer: &str, limit: u32) -> StripeResult<List<Invoice>> {
        let limit = limit.clamp(1, 100).to_string();
        self.get(
            "v1/invoices",
            &[("customer", check_id(customer)?), ("limit", &limit)],
        )
        .await
    }

    pub async fn get_invoice(&self, id: &str) -> StripeResult<Invoice> {
        self.get(&format!("v1/invoices/{}", check_id(id)?), &[])
            .await
    }

    pub async fn get_charge(&self, id: &str) -> StripeResult<Charge> {
        self.get(&format!("v1/charges/{}", check_id(id)?), &[])
            .await
    }

    pub async fn get_payment_intent(&self, id: &str) -> StripeResult<PaymentIntent> {
        self.get(&format!("v1/payment_intents/{}", check_id(id)?), &[])
            .await
    }
}

enum RetryHint {
    Never,
    /// Retry, after at least this long when Stripe said so.
    Retryable(Option<Duration>),
}

fn classify(status: StatusCode, error: ApiErrorBody) -> StripeError {
    let error = Box::new(error);
    match (status.as_u16(), error.kind.as_str()) {
        (_, "card_error") | (402, _) => StripeError::Card(error),
        (_, "idempotency_error") => StripeError::Idempotency(error),
        (401 | 403, _) => StripeError::Authentication(error),
        (404, _) => StripeError::NotFound(error),
        (429, _) => StripeError::RateLimited(error),
        (400..=499, _) => StripeError::InvalidRequest(error),
        _ => StripeError::Server(error),
    }
}

/// A stable Idempotency-Key for Stripe from our own ids: the same parts give the same key.
pub fn idempotency_key(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    format!("audiostudio-{}", &hex::encode(h.finalize())[..40])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_status_and_type() {
        let body = |kind: &str| ApiErrorBody {
            kind: kind.into(),
            ..ApiErrorBody::default()
        };
        assert!(matches!(
            classify(StatusCode::PAYMENT_REQUIRED, body("card_error")),
            StripeError::Card(_)
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, body("invalid_request_error")),
            StripeError::NotFound(_)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, body("invalid_request_error")),
            StripeError::InvalidRequest(_)
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, body("invalid_request_error")),
            StripeError::Authentication(_)
        ));
        assert!(matches!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, body("api_error")),
            StripeError::Server(_)
        ));
    }

    #[test]
    fn keys_are_stable_and_distinct() {
        assert_eq!(idempotency_key(&["a", "b"]), idempotency_key(&["a", "b"]));
        assert_ne!(idempotency_key(&["ab", ""]), idempotency_key(&["a", "b"]));
        assert!(idempotency_key(&["x"]).len() <= 255);
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let stripe =
            Stripe::new("http://127.0.0.1:1", SecretString::from("sk_test_secret")).unwrap();
        assert!(!format!("{stripe:?}").contains("sk_test_secret"));
        assert!(check_id("cus_123").is_ok());
        assert!(check_id("../v1/charges").is_err());
    }

    #[test]
    fn expandable_fields_read_as_ids() {
        let session: CheckoutSession = serde_json::from_value(serde_json::json!({
            "id": "cs_1", "customer": {"id": "cus_1", "object": "customer"}, "subscription": "sub_1", "metadata": null
        }))
        .unwrap();
        assert_eq!(session.customer.as_deref(), Some("cus_1"));
        assert_eq!(session.subscription.as_deref(), Some("sub_1"));
    }
}
