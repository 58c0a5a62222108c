//! Retries: each call is tried up to `max_attempts` times (429, 5xx, 409 in flight, network
//! errors), with exponential backoff and jitter, honouring `Stripe-Should-Retry` and `Retry-After`.

use std::time::Duration;

use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::errors::{ApiErrorBody, StripeError, StripeResult, classify};
use super::params::{API_VERSION, Params};

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

/// Whether a failed attempt may be tried again.
pub(super) enum RetryHint {
    Never,
    /// Retry, after at least this long when Stripe said so.
    Retryable(Option<Duration>),
}

/// A failed attempt: the error, and whether to try again.
type Failure = (StripeError, RetryHint);

/// Whether Stripe's answer is worth another attempt: its `Stripe-Should-Retry` header
/// decides when present; otherwise 429, 5xx and 409 (the same Idempotency-Key in flight).
fn retryable(status: StatusCode, should_retry: Option<&str>) -> bool {
    match should_retry {
        Some("true") => true,
        Some("false") => false,
        _ => {
            status == StatusCode::TOO_MANY_REQUESTS
                || status.is_server_error()
                || status == StatusCode::CONFLICT
        }
    }
}

/// A transport failure (no answer, or a body cut off): always worth retrying.
fn transport(e: reqwest::Error) -> Failure {
    let error = if e.is_timeout() {
        StripeError::Timeout
    } else {
        // Without the URL: it is ours, and the error text is enough.
        StripeError::Unreachable(e.without_url().to_string())
    };
    (error, RetryHint::Retryable(None))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The error of a non-2xx answer and whether to retry it.
fn refusal(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
    let mut error = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| serde_json::from_value::<ApiErrorBody>(v.get("error")?.clone()).ok())
        .unwrap_or_default();
    error.status = status.as_u16();
    error.request_id = header(headers, "request-id");
    let hint = if retryable(status, header(headers, "stripe-should-retry").as_deref()) {
        let retry_after = header(headers, "retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        RetryHint::Retryable(retry_after)
    } else {
        RetryHint::Never
    };
    (classify(status, error), hint)
}

/// One Stripe call, to make as many times as its policy allows.
pub(super) struct Call<'a> {
    pub http: &'a reqwest::Client,
    pub key: &'a SecretString,
    pub policy: &'a RetryPolicy,
    pub method: Method,
    pub url: Url,
    pub params: Option<&'a Params>,
    pub idempotency_key: Option<&'a str>,
}

impl RetryPolicy {
    /// Exponential backoff with jitter: 50-100 % of base * 2^(attempt-1), capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.max_delay);
        let millis = exp.as_millis() as u64;
        let jittered = if millis < 2 {
            millis
        } else {
            rand::rng().random_range(millis / 2..=millis)
        };
        Duration::from_millis(jittered)
    }

    /// How long to wait before attempt `attempt + 1`, or `None` to give up.
    fn delay_after(&self, attempt: u32, hint: &RetryHint) -> Option<Duration> {
        let RetryHint::Retryable(after) = hint else {
            return None;
        };
        if attempt >= self.max_attempts {
            return None;
        }
        let delay = self.backoff(attempt);
        Some(match after {
            Some(after) => delay.max((*after).min(self.max_delay)),
            None => delay,
        })
    }
}

impl Call<'_> {
    pub(super) async fn send<T: DeserializeOwned>(&self) -> StripeResult<T> {
        let mut attempt = 1;
        loop {
            let (error, hint) = match self.attempt().await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let Some(delay) = self.policy.delay_after(attempt, &hint) else {
                return Err(error);
            };
            tracing::warn!(
                method = %self.method,
                path = self.url.path(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "Stripe call failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One try: send, read the whole answer, decode the object or the error.
    async fn attempt<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        let mut request = self
            .http
            .request(self.method.clone(), self.url.clone())
            .bearer_auth(self.key.expose_secret())
            .header("Stripe-Version", API_VERSION)
            .timeout(self.policy.timeout);
        if let Some(key) = self.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(params) = self.params {
            request = request.form(params.pairs());
        }
        let response = request.send().await.map_err(transport)?;
        let (status, headers) = (response.status(), response.headers().clone());
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(refusal(status, &headers, &body));
        }
        serde_json::from_slice(&body).map_err(|e| {
            (
                StripeError::Decode(format!("{e} (HTTP {status})")),
                RetryHint::Never,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_should_retry_decides_when_sent() {
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS, None));
        assert!(retryable(StatusCode::BAD_GATEWAY, None));
        assert!(retryable(StatusCode::CONFLICT, None));
        assert!(!retryable(StatusCode::BAD_REQUEST, None));
        assert!(retryable(StatusCode::BAD_REQUEST, Some("true")));
        assert!(!retryable(StatusCode::SERVICE_UNAVAILABLE, Some("false")));
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            timeout: Duration::from_secs(1),
        };
        let first = policy.delay_after(1, &RetryHint::Retryable(None)).unwrap();
        assert!((50..=100).contains(&first.as_millis()));
        let second = policy.delay_after(2, &RetryHint::Retryable(None)).unwrap();
        assert!((100..=200).contains(&second.as_millis()));
        let told = RetryHint::Retryable(Some(Duration::from_secs(10)));
        assert_eq!(
            policy.delay_after(1, &told),
            Some(Duration::from_millis(300))
        );
        assert_eq!(policy.delay_after(3, &RetryHint::Retryable(None)), None);
        assert_eq!(policy.delay_after(1, &RetryHint::Never), None);
    }
}
