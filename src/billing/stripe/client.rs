//! The client: one shared connection pool, the base URL and the secret key, and GET/POST/DELETE with the pinned API version.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::errors::{StripeError, StripeResult};
use super::params::Params;
use super::retry::{Call, RetryPolicy};
use crate::platform::config::Settings;

const USER_AGENT: &str = concat!("audiostudio/", env!("CARGO_PKG_VERSION"));

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

impl Stripe {
    /// The client the settings describe; `NotConfigured` without a secret key.
    pub fn from_settings(settings: &Settings) -> StripeResult<Stripe> {
        let key = settings
            .secrets
            .stripe_secret_key
            .as_ref()
            .filter(|k| !k.expose_secret().trim().is_empty())
            .ok_or(StripeError::NotConfigured)?;
        Stripe::new(&settings.billing.stripe_api_base, key.clone())
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
        let call = Call {
            http: &self.http,
            key: &self.key,
            policy: &self.policy,
            method,
            url,
            params,
            idempotency_key,
        };
        call.send().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let stripe =
            Stripe::new("http://127.0.0.1:1", SecretString::from("sk_test_secret")).unwrap();
        assert!(!format!("{stripe:?}").contains("sk_test_secret"));
    }
}
