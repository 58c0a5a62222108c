//! Request encoding: form parameters with bracketed keys, what a Checkout Session or a plan change asks for, ids in paths, Idempotency-Keys.

use super::errors::{StripeError, StripeResult};

/// The API version every request pins, so Stripe's answers keep the shape this code reads.
pub const API_VERSION: &str = "2024-06-20";

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

    /// The mode of a session Stripe describes; `None` for one we never create.
    pub fn from_stripe(mode: Option<&str>) -> Option<CheckoutMode> {
        [CheckoutMode::Subscription, CheckoutMode::Payment]
            .into_iter()
            .find(|m| Some(m.as_str()) == mode)
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

/// Ids go into URL paths: they must look like Stripe ids (`cus_...`, `sub_...`).
pub(super) fn check_id(id: &str) -> StripeResult<&str> {
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
    fn keys_are_stable_and_distinct() {
        assert_eq!(idempotency_key(&["a", "b"]), idempotency_key(&["a", "b"]));
        assert_ne!(idempotency_key(&["ab", ""]), idempotency_key(&["a", "b"]));
        assert!(idempotency_key(&["x"]).len() <= 255);
    }

    #[test]
    fn ids_in_paths_look_like_stripe_ids() {
        assert!(check_id("cus_123").is_ok());
        assert!(check_id("../v1/charges").is_err());
    }
}
