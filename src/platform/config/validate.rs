//! Each section's checks, with messages that name the key and say how to fix it.

use anyhow::{Context, bail};
use secrecy::ExposeSecret;

use super::sections::{
    Auth, Billing, Connections, Email, RateLimits, Secrets, Server, Storage, Tokens,
};

const TEN_YEARS_SECS: u64 = 10 * 366 * 24 * 3600;

/// `key must be at least 1` for each zero.
fn at_least_one<T: Copy + PartialEq + Default>(keys: &[(&str, T)]) -> anyhow::Result<()> {
    for (key, value) in keys {
        if *value == T::default() {
            bail!(
                "invalid configuration: {key} must be at least 1\nfix: set it to a positive number"
            );
        }
    }
    Ok(())
}

fn http_url(value: &str) -> bool {
    value.starts_with("http://") || value.starts_with("https://")
}

/// `scheme://host[:port]` exactly as a browser sends it in `Origin`: http(s), no path,
/// no trailing slash, no user info.
fn is_origin(value: &str) -> bool {
    let Some((_, rest)) = value
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
    else {
        return false;
    };
    !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@'])
        && rocket::http::uri::Absolute::parse(value).is_ok()
}

impl Storage {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        if !(1..=64).contains(&self.read_pool_size) {
            bail!(
                "invalid configuration: read_pool_size = {} is out of range\nfix: use a value from 1 to 64",
                self.read_pool_size
            );
        }
        Ok(())
    }
}

impl Server {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        if !http_url(&self.public_base_url)
            || rocket::http::uri::Absolute::parse(&self.public_base_url).is_err()
        {
            bail!(
                "invalid configuration: public_base_url = {:?} is not an absolute http(s) URL\nfix: set ROCKET_PUBLIC_BASE_URL to the address users reach the server at, e.g. https://audio.example.com",
                self.public_base_url
            );
        }
        for origin in &self.cors_allowed_origins {
            if !is_origin(origin) {
                bail!(
                    "invalid configuration: cors_allowed_origins has {origin:?}, which is not an origin\nfix: list origins as scheme://host[:port] with no path and no trailing slash, e.g. https://app.example.com"
                );
            }
        }
        if let Some(token) = &self.metrics_token {
            let token = token.expose_secret();
            if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
                bail!(
                    "invalid configuration: metrics_token must be at least 16 printable characters without spaces\nfix: use a long random value, e.g. `openssl rand -hex 32`, or unset it to leave /metrics open"
                );
            }
        }
        Ok(())
    }
}

impl Auth {
    pub(super) fn argon2_params(&self) -> anyhow::Result<argon2::Params> {
        argon2::Params::new(
            self.argon2_memory_kib,
            self.argon2_iterations,
            self.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))
    }

    pub(super) fn validate(&self) -> anyhow::Result<()> {
        self.argon2_params().map_err(|e| anyhow::anyhow!("invalid configuration: argon2_memory_kib / argon2_iterations / argon2_parallelism: {e}\nfix: remove them to use the OWASP defaults (19456, 2, 1)"))?;
        at_least_one(&[("login_max_failures", self.login_max_failures)])?;
        if self.mfa_issuer.trim().is_empty() || self.mfa_issuer.contains(':') {
            bail!(
                "invalid configuration: mfa_issuer = {:?} is empty or contains ':'\nfix: use the service's name as authenticator apps should show it, e.g. audiostudio",
                self.mfa_issuer
            );
        }
        for (key, value, max) in [
            (
                "access_token_ttl_secs",
                self.access_token_ttl_secs,
                TEN_YEARS_SECS,
            ),
            ("refresh_token_ttl_days", self.refresh_token_ttl_days, 3660),
            ("mfa_challenge_ttl_secs", self.mfa_challenge_ttl_secs, 3600),
            (
                "login_lockout_secs",
                self.login_lockout_secs,
                TEN_YEARS_SECS,
            ),
            (
                "login_failure_window_secs",
                self.login_failure_window_secs,
                TEN_YEARS_SECS,
            ),
        ] {
            if value == 0 || value > max {
                bail!(
                    "invalid configuration: {key} = {value} is out of range\nfix: use a value from 1 to {max}, or remove it to use the default"
                );
            }
        }
        at_most_ten_years(&[
            ("refresh_reuse_grace_secs", self.refresh_reuse_grace_secs),
            ("session_idle_timeout_secs", self.session_idle_timeout_secs),
            (
                "admin_session_idle_timeout_secs",
                self.admin_session_idle_timeout_secs,
            ),
            (
                "admin_session_absolute_timeout_secs",
                self.admin_session_absolute_timeout_secs,
            ),
        ])?;
        for (key, value) in [
            (
                "admin_session_idle_timeout_secs",
                self.admin_session_idle_timeout_secs,
            ),
            (
                "admin_session_absolute_timeout_secs",
                self.admin_session_absolute_timeout_secs,
            ),
        ] {
            if value == 0 {
                bail!(
                    "invalid configuration: {key} = 0\nfix: use a number of seconds above 0, or remove it to use the default"
                );
            }
        }
        if self.session_idle_timeout_secs < self.access_token_ttl_secs {
            bail!(
                "invalid configuration: session_idle_timeout_secs = {} is shorter than access_token_ttl_secs = {}\nfix: a client refreshes only when its access token expires; use at least {}",
                self.session_idle_timeout_secs,
                self.access_token_ttl_secs,
                self.access_token_ttl_secs
            );
        }
        Ok(())
    }
}

fn at_most_ten_years(keys: &[(&str, u64)]) -> anyhow::Result<()> {
    for (key, value) in keys {
        if *value > TEN_YEARS_SECS {
            bail!(
                "invalid configuration: {key} = {value} is out of range\nfix: use at most {TEN_YEARS_SECS}"
            );
        }
    }
    Ok(())
}

impl RateLimits {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        at_least_one(&[
            (
                "rate_limit_login_per_minute",
                self.rate_limit_login_per_minute,
            ),
            (
                "rate_limit_register_per_hour",
                self.rate_limit_register_per_hour,
            ),
            (
                "rate_limit_password_reset_per_hour",
                self.rate_limit_password_reset_per_hour,
            ),
            (
                "rate_limit_public_per_minute",
                self.rate_limit_public_per_minute,
            ),
            (
                "rate_limit_webhook_per_minute",
                self.rate_limit_webhook_per_minute,
            ),
            (
                "rate_limit_global_per_minute",
                self.rate_limit_global_per_minute,
            ),
            (
                "rate_limit_token_mutations_per_minute",
                self.rate_limit_token_mutations_per_minute,
            ),
            (
                "rate_limit_social_claims_per_hour",
                self.rate_limit_social_claims_per_hour,
            ),
            (
                "rate_limit_checkout_per_hour",
                self.rate_limit_checkout_per_hour,
            ),
            (
                "rate_limit_billing_history_per_minute",
                self.rate_limit_billing_history_per_minute,
            ),
            (
                "rate_limit_account_changes_per_hour",
                self.rate_limit_account_changes_per_hour,
            ),
        ])?;
        at_most_ten_years(&[
            (
                "resend_verification_interval_secs",
                self.resend_verification_interval_secs,
            ),
            (
                "password_reset_email_interval_secs",
                self.password_reset_email_interval_secs,
            ),
        ])
    }
}

impl Email {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        at_least_one(&[("email_max_attempts", self.email_max_attempts)])?;
        self.email_from
            .parse::<lettre::message::Mailbox>()
            .with_context(|| format!("invalid configuration: email_from = {:?} is not a mailbox\nfix: use a form like `audiostudio <no-reply@example.com>`", self.email_from))?;
        Ok(())
    }
}

impl Tokens {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        let bad_name = |f: &String| {
            f.is_empty()
                || f.len() > 64
                || !f
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if self.token_features.is_empty() || self.token_features.iter().any(bad_name) {
            bail!(
                "invalid configuration: token_features must be a non-empty list of names made of a-z, 0-9 and _ (at most 64 each)\nfix: e.g. token_features = [\"text_to_speech\", \"voice_clone\"]"
            );
        }
        if self.hold_default_ttl_secs == 0
            || self.hold_default_ttl_secs > self.hold_max_ttl_secs
            || self.hold_max_ttl_secs > TEN_YEARS_SECS
            || self.token_sweep_interval_secs == 0
            || self.social_daily_reward_cap < 0
        {
            bail!(
                "invalid configuration: need 0 < hold_default_ttl_secs <= hold_max_ttl_secs, token_sweep_interval_secs > 0 and social_daily_reward_cap >= 0\nfix: remove them to use the defaults (600, 86400, 30, 500)"
            );
        }
        if self.social_daily_reward_cap_per_ip < 0 {
            bail!(
                "invalid configuration: social_daily_reward_cap_per_ip must be >= 0\nfix: remove it to use the default (1000)"
            );
        }
        Ok(())
    }
}

impl Billing {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        if !http_url(&self.stripe_api_base) {
            bail!(
                "invalid configuration: stripe_api_base = {:?} is not an http(s) URL\nfix: unset STRIPE_API_BASE to use https://api.stripe.com",
                self.stripe_api_base
            );
        }
        Ok(())
    }
}

impl Secrets {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        if let Some(secret) = &self.jwt_secret
            && secret.expose_secret().len() < 32
        {
            bail!(
                "invalid configuration: JWT_SECRET is {} bytes long; it needs at least 32\nfix: use a long random value, e.g. `openssl rand -base64 48`, or unset it to let audiostudio generate one",
                secret.expose_secret().len()
            );
        }
        Ok(())
    }
}

impl Connections {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        for (key, value) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if value == 0 || value > 3600 {
                bail!(
                    "invalid configuration: {key} = {value} is out of range\nfix: use a value from 1 to 3600, or remove it to use the default"
                );
            }
        }
        at_least_one(&[
            ("max_connections", self.max_connections),
            ("max_connections_per_ip", self.max_connections_per_ip),
        ])
    }
}
