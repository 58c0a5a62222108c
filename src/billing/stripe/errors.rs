//! Stripe's errors: its error object, our classification of it, and what an API caller sees.

use reqwest::StatusCode;
use serde::Deserialize;

use crate::http::error::ApiError;

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

pub(super) fn classify(status: StatusCode, error: ApiErrorBody) -> StripeError {
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
}
