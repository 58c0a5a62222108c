//! What billing's handlers share: parsing catalogue ids and redirect URLs, optional JSON bodies, request references for Stripe, times as RFC 3339.

use rocket::data::Capped;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::billing::redirects::check_redirect;
use crate::billing::stripe::Stripe;
use crate::http::error::{ApiError, ApiResult};
use crate::http::validate::Checks;
use crate::platform::clock::{Millis, rfc3339};
use crate::state::App;

/// The Stripe client, or the 503 that says billing is not configured.
pub fn stripe_for(app: &App) -> ApiResult<Stripe> {
    Ok(Stripe::from_settings(&app.settings)?)
}

/// A catalogue id given by a client: short, printable.
pub(crate) fn catalogue_id<T: From<String>>(value: &str) -> Result<T, String> {
    if value.trim().is_empty() {
        Err("is required".into())
    } else if value.len() > 64 || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Err("is not an id from the catalogue".into())
    } else {
        Ok(T::from(value.to_owned()))
    }
}

/// An optional redirect URL, checked against the allowed origins.
pub(crate) fn redirect(app: &App, url: Option<&str>) -> Result<(), String> {
    url.map_or(Ok(()), |u| check_redirect(app, u))
}

/// Checks optional success and cancel URLs against the allowed origins.
pub(crate) fn redirect_fields(
    app: &App,
    checks: &mut Checks,
    success_url: Option<&str>,
    cancel_url: Option<&str>,
) -> (Option<()>, Option<()>) {
    (
        checks.field("success_url", redirect(app, success_url)),
        checks.field("cancel_url", redirect(app, cancel_url)),
    )
}

/// A fresh per-request reference for Stripe's Idempotency-Key, or one derived from the
/// caller's own `Idempotency-Key` (so the caller's retry reaches the same Stripe object).
pub(crate) fn request_ref(key: Option<&str>, fingerprint: &str) -> String {
    match key {
        Some(key) => format!("key:{key}:{fingerprint}"),
        None => uuid::Uuid::now_v7().to_string(),
    }
}

/// A fresh reference for a Stripe call that must not be replayed across requests.
pub(crate) fn fresh_ref() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) fn time(ms: Option<Millis>) -> Option<String> {
    ms.map(rfc3339)
}

/// Stripe's unix seconds as RFC 3339.
pub(crate) fn secs(s: Option<i64>) -> Option<String> {
    s.and_then(|s| s.checked_mul(1000)).map(rfc3339)
}

/// A JSON body that may be absent: an empty body means `None`; otherwise it must be a
/// JSON object of the expected shape (errors read as `parse_body`'s: 400 or 422).
pub fn optional_json<T: DeserializeOwned>(body: Capped<String>) -> ApiResult<Option<T>> {
    if !body.is_complete() {
        return Err(ApiError::PayloadTooLarge);
    }
    let text = body.into_inner();
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| match e.classify() {
        Category::Data => {
            ApiError::Unprocessable(format!("the body does not have the expected shape: {e}"))
        }
        _ => ApiError::BadRequest(format!("the body is not valid JSON: {e}")),
    })?;
    if !value.is_object() {
        return Err(ApiError::Unprocessable(
            "the body does not have the expected shape: it must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value).map(Some).map_err(|e| {
        ApiError::Unprocessable(format!("the body does not have the expected shape: {e}"))
    })
}
