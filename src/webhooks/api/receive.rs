//! `POST /api/webhooks/stripe`: verify a delivery against `Stripe-Signature`, store it once by its Stripe id, answer at once.

use rocket::data::{Data, Limits, ToByteUnit};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::Json;
use rocket::{State, post};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use super::Wakeup;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::config::Settings;
use crate::state::App;
use crate::webhooks::envelope::{Envelope, key_livemode, mode, parse_envelope};
use crate::webhooks::signature;
use crate::webhooks::store::{self, NewEvent};

/// Largest webhook body accepted, unless Rocket's `limits.stripe-webhook` says otherwise.
/// Stripe events are often larger than Rocket's 8 KiB `bytes` default.
pub const DEFAULT_BODY_LIMIT_MIB: u64 = 1;

/// The `Stripe-Signature` header: absent, one value, or (refused) several.
pub struct StripeSignature(Result<Option<String>, ()>);

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

/// The configured webhook secret(s), or the 503 that says there are none.
fn configured_secret(settings: &Settings) -> ApiResult<String> {
    let configured = settings
        .secrets
        .stripe_webhook_secret
        .as_ref()
        .map(|s| s.expose_secret().to_owned())
        .unwrap_or_default();
    if signature::secrets(&configured).is_empty() {
        return Err(ApiError::Unavailable(
            "billing not configured: STRIPE_WEBHOOK_SECRET is not set".into(),
        ));
    }
    Ok(configured)
}

/// The raw body, whole, within the `stripe-webhook` limit.
async fn read_body(body: Data<'_>, limits: &Limits) -> ApiResult<Vec<u8>> {
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
    Ok(body.into_inner())
}

/// Checks the signature on the raw body, then reads the event's envelope.
fn verified_envelope(
    app: &App,
    secret: &str,
    sent: StripeSignature,
    body: Vec<u8>,
) -> ApiResult<(Envelope, String)> {
    let header = sent
        .0
        .map_err(|()| ApiError::BadRequest("send exactly one Stripe-Signature header".into()))?;
    signature::verify(
        header.as_deref(),
        &body,
        &signature::secrets(secret),
        app.clock.now_secs(),
        app.settings.billing.stripe_webhook_tolerance_secs,
    )
    .map_err(|e| {
        // Worth a line: a wrong or rolled secret shows up here first.
        tracing::warn!(reason = %e, "refused a Stripe webhook delivery");
        ApiError::BadRequest(e.to_string())
    })?;
    let text = String::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8 JSON".into()))?;
    let envelope = parse_envelope(&text).map_err(ApiError::BadRequest)?;
    Ok((envelope, text))
}

/// Why an event is stored `ignored` rather than `pending`: it is of the other live/test
/// mode than our key, unless the settings accept both.
fn ignore_reason(settings: &Settings, livemode: bool) -> Option<String> {
    match key_livemode(settings) {
        Some(key_live) if key_live != livemode && !settings.billing.stripe_accept_other_mode => {
            Some(format!(
                "a {} mode event, but STRIPE_SECRET_KEY is a {} mode key (set stripe_accept_other_mode to process it)",
                mode(livemode),
                mode(key_live)
            ))
        }
        _ => None,
    }
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
pub(crate) async fn receive_stripe(
    app: &State<App>,
    wakeup: Wakeup,
    sent_signature: StripeSignature,
    limits: &Limits,
    body: Data<'_>,
) -> ApiResult<Json<Received>> {
    let secret = configured_secret(&app.settings)?;
    let body = read_body(body, limits).await?;
    let (envelope, text) = verified_envelope(app, &secret, sent_signature, body)?;
    let ignore = ignore_reason(&app.settings, envelope.livemode);
    let pending = ignore.is_none();
    let now = app.clock.now_ms();
    let stored = app
        .db
        .write(move |tx| {
            let event = NewEvent {
                id: &envelope.id,
                event_type: &envelope.event_type,
                payload: &text,
                livemode: envelope.livemode,
                api_version: envelope.api_version.as_deref(),
                object_id: envelope.object_id.as_deref(),
                ignore,
            };
            store::insert(tx, &event, now).map_err(ApiError::from)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_the_other_mode_are_ignored_unless_accepted() {
        let mut settings = Settings::default();
        settings.secrets.stripe_secret_key = Some("sk_test_abc".to_owned().into());
        assert_eq!(ignore_reason(&settings, false), None);
        assert!(
            ignore_reason(&settings, true)
                .unwrap()
                .contains("a live mode event")
        );
        settings.billing.stripe_accept_other_mode = true;
        assert_eq!(ignore_reason(&settings, true), None);
    }
}
