//! Billing through Stripe: plans and packs, Checkout and the Billing Portal, subscription changes.
//!
//! Handlers never hold a database transaction across a Stripe call: they read what they
//! need, call Stripe (idempotently, with keys derived from our ids), then write what
//! Stripe answered. Without a secret key every route that needs Stripe answers 503.

pub mod catalog;
pub mod emails;
pub mod events;
pub mod ops;
pub mod purchase;
pub mod store;
pub mod stripe;
pub mod subscriptions;

use rocket::data::Capped;
use rocket::{Build, Rocket, Route, routes};
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use serde_json::json;
use utoipa::OpenApi;

use crate::http::error::{ApiError, ApiResult};
use crate::platform::audit::{self, Actor, Event};
use crate::state::App;
use stripe::Stripe;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        catalog::list_plans,
        subscriptions::current,
        subscriptions::checkout,
        subscriptions::checkout_status,
        subscriptions::portal,
        subscriptions::cancel,
        subscriptions::resume,
        subscriptions::update,
        subscriptions::history,
        purchase::purchase,
    ),
    components(schemas(
        store::PlanView,
        store::ChangeView,
        catalog::PlansResponse,
        subscriptions::CurrentSubscription,
        subscriptions::CheckoutRequest,
        subscriptions::CheckoutResponse,
        subscriptions::CheckoutStatus,
        subscriptions::PortalRequest,
        subscriptions::PortalResponse,
        subscriptions::CancelRequest,
        subscriptions::UpdateRequest,
        subscriptions::HistoryResponse,
        subscriptions::PeriodView,
        subscriptions::InvoiceView,
        purchase::PurchaseRequest,
    )),
    tags((name = "billing", description = "Plans, subscriptions and token-pack purchases through Stripe; 503 when billing is not configured"))
)]
pub struct ApiDoc;

/// Mounts the subscription routes under `/api/subscriptions` and pack purchase under `/api/tokens`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket
        .mount("/api/subscriptions", routes())
        .mount("/api/tokens", routes![purchase::purchase])
}

fn routes() -> Vec<Route> {
    routes![
        catalog::list_plans,
        subscriptions::current,
        subscriptions::checkout,
        subscriptions::checkout_status,
        subscriptions::portal,
        subscriptions::cancel,
        subscriptions::resume,
        subscriptions::update,
        subscriptions::history,
    ]
}

/// The Stripe client, or the 503 that says billing is not configured.
pub fn stripe_for(app: &App) -> ApiResult<Stripe> {
    Ok(Stripe::from_settings(&app.settings)?)
}

/// `scheme://host[:port]` of an absolute http(s) URL, lower-cased, default port dropped;
/// `None` for anything else (userinfo, backslashes, whitespace and control characters included).
pub fn origin(url: &str) -> Option<String> {
    if url.is_empty()
        || url.len() > 2048
        || url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", host.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty()
            || host.starts_with('.')
            || host.starts_with('-')
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) if p.is_empty() || p.parse::<u16>().is_err() => return None,
        Some(p) if p.trim_start_matches('0') == default_port => None,
        Some(p) => Some(p.trim_start_matches('0').to_owned()),
    };
    Some(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The origins a success, cancel or return URL may point at: `public_base_url`'s and
/// `billing_redirect_origins`.
pub fn allowed_origins(app: &App) -> Vec<String> {
    std::iter::once(app.settings.public_base_url.as_str())
        .chain(
            app.settings
                .billing_redirect_origins
                .iter()
                .map(String::as_str),
        )
        .filter_map(origin)
        .collect()
}

/// A client-given redirect URL, checked against the allowed origins (no open redirect).
pub fn check_redirect(app: &App, url: &str) -> Result<(), String> {
    let Some(given) = origin(url) else {
        return Err("must be an absolute http(s) URL of at most 2048 characters".into());
    };
    let allowed = allowed_origins(app);
    if allowed.contains(&given) {
        Ok(())
    } else {
        Err(format!(
            "must point at one of the allowed origins ({}); {given} is not one",
            allowed.join(", ")
        ))
    }
}

/// Adds `session_id={CHECKOUT_SESSION_ID}` (filled in by Stripe) unless the URL asks for it already.
pub fn with_session_placeholder(url: &str) -> String {
    const PLACEHOLDER: &str = "{CHECKOUT_SESSION_ID}";
    if url.contains(PLACEHOLDER) {
        return url.to_owned();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{separator}session_id={PLACEHOLDER}");
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
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

/// What a new Checkout Session sells, and to whom.
pub(crate) struct CheckoutOrder<'a> {
    pub mode: stripe::CheckoutMode,
    pub user_id: &'a str,
    pub actor: &'a Actor,
    pub price: &'a str,
    pub metadata: &'a [(&'a str, &'a str)],
    pub success_url: Option<&'a str>,
    pub cancel_url: Option<&'a str>,
    /// Our name for the operation and the request, for Stripe's Idempotency-Key.
    pub operation: &'a str,
    pub reference: &'a str,
}

/// Creates (or, on a retry, gets back) the customer and a Checkout Session for `order`;
/// returns the customer id, the session and its URL. No database transaction is open.
pub(crate) async fn open_checkout(
    app: &App,
    stripe: &Stripe,
    order: &CheckoutOrder<'_>,
) -> ApiResult<(String, stripe::CheckoutSession, String)> {
    let customer = ensure_customer(app, stripe, order.user_id, order.actor).await?;
    let success_url = with_session_placeholder(
        order
            .success_url
            .unwrap_or(&app.settings.billing_success_url),
    );
    let cancel_url = order.cancel_url.unwrap_or(&app.settings.billing_cancel_url);
    let session = stripe
        .create_checkout_session(
            &stripe::NewCheckoutSession {
                mode: order.mode,
                customer: &customer,
                price: order.price,
                client_reference_id: order.user_id,
                success_url: &success_url,
                cancel_url,
                metadata: order.metadata,
            },
            &stripe::idempotency_key(&[order.operation, order.user_id, order.reference]),
        )
        .await?;
    let url = session.url.clone().ok_or_else(|| {
        ApiError::BadGateway("Stripe created a Checkout Session without a URL".into())
    })?;
    Ok((customer, session, url))
}

/// The user's Stripe customer, created once (its metadata carries our user id) and stored
/// on the user. Concurrent first calls share one customer: the Idempotency-Key is the user's.
pub async fn ensure_customer(
    app: &App,
    stripe: &Stripe,
    user_id: &str,
    actor: &Actor,
) -> ApiResult<String> {
    let owner = user_id.to_owned();
    let (email, existing) = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::customer_of(c, &owner)?))
        .await?
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    if let Some(customer) = existing {
        return Ok(customer);
    }
    let customer = stripe
        .create_customer(
            &email,
            user_id,
            &stripe::idempotency_key(&["customer", user_id]),
        )
        .await?;
    let (owner, actor, now) = (user_id.to_owned(), actor.clone(), app.clock.now_ms());
    app.db
        .write(move |tx| {
            let (stored, new) = store::set_customer(tx, &owner, &customer.id, now)?;
            if new {
                audit::record(
                    tx,
                    now,
                    &actor,
                    Event::new("billing.customer_created")
                        .target("user", &owner)
                        .details(json!({ "stripe_customer_id": customer.id })),
                )?;
            }
            Ok::<_, ApiError>(stored)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_tricks_refused() {
        assert_eq!(
            origin("https://Studio.Example.com/billing?x=1").as_deref(),
            Some("https://studio.example.com")
        );
        assert_eq!(
            origin("https://studio.example.com:443/").as_deref(),
            Some("https://studio.example.com")
        );
        assert_eq!(
            origin("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(
            origin("http://[::1]:8080/x").as_deref(),
            Some("http://[::1]:8080")
        );
        for bad in [
            "https://studio.example.com@evil.com/",
            "https://evil.com\\@studio.example.com",
            "javascript:alert(1)",
            "//evil.com",
            "https:///x",
            "https://evil.com:99999/",
            "https://exa mple.com/",
            "ftp://example.com/",
            "https://studio.example.com:/",
        ] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_success_url_carries_the_session_id() {
        assert_eq!(
            with_session_placeholder("https://a.com/ok"),
            "https://a.com/ok?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(
            with_session_placeholder("https://a.com/ok?x=1#top"),
            "https://a.com/ok?x=1&session_id={CHECKOUT_SESSION_ID}#top"
        );
        assert_eq!(
            with_session_placeholder("https://a.com/ok?s={CHECKOUT_SESSION_ID}"),
            "https://a.com/ok?s={CHECKOUT_SESSION_ID}"
        );
    }
}
