//! Typed settings from Rocket's figment, validated once at startup with messages that say how to fix them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rocket::figment::providers::{Env, Format, Serialized, Toml};
use rocket::figment::{Figment, Profile};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Environment variables read under their conventional names, without the `ROCKET_` prefix
/// (the secrets, and the Stripe API base URL).
pub const RAW_ENV_VARS: [&str; 5] = [
    "JWT_SECRET",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "SMTP_URL",
    "STRIPE_API_BASE",
];

/// SQLite's `synchronous` pragma: how hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Synchronous {
    #[serde(alias = "full")]
    Full,
    #[serde(alias = "normal")]
    Normal,
}

impl Synchronous {
    pub fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Every setting of the application (Rocket's own settings, such as `port`, stay Rocket's).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub synchronous: Synchronous,
    pub read_pool_size: u32,
    pub public_base_url: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
    pub refresh_reuse_grace_secs: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// How many password hashes may run at once; 0 means one per CPU core.
    pub hash_concurrency: usize,
    pub login_max_failures: u32,
    pub login_failure_window_secs: u64,
    pub login_lockout_secs: u64,
    pub rate_limit_login_per_minute: u32,
    pub rate_limit_register_per_hour: u32,
    pub rate_limit_password_reset_per_hour: u32,
    pub resend_verification_interval_secs: u64,
    pub password_reset_email_interval_secs: u64,
    pub email_from: String,
    pub email_max_attempts: u32,
    /// The job features tokens can be spent on; anything else is refused.
    pub token_features: Vec<String>,
    pub hold_default_ttl_secs: u64,
    pub hold_max_ttl_secs: u64,
    /// Most reward tokens one user can claim per UTC day from social tasks.
    pub social_daily_reward_cap: i64,
    /// How often expired lots and holds are swept (a read never counts them anyway).
    pub token_sweep_interval_secs: u64,
    /// Stripe's API base URL (env `STRIPE_API_BASE`); tests point it at a local fake.
    pub stripe_api_base: String,
    /// Where Checkout sends the user back; defaults for the checkout routes.
    pub billing_success_url: String,
    pub billing_cancel_url: String,
    /// Origins that success/cancel URLs given by clients may point at (no open redirect);
    /// the origin of `public_base_url` is always allowed.
    pub billing_redirect_origins: Vec<String>,
    /// Accept webhook events whose `livemode` differs from the secret key's mode.
    pub stripe_accept_other_mode: bool,
    /// Tolerance for the `Stripe-Signature` timestamp.
    pub stripe_webhook_tolerance_secs: u64,
    /// Processing attempts of a stored webhook event before it is marked failed.
    pub webhook_max_attempts: u32,
    pub jwt_secret: Option<SecretString>,
    pub stripe_secret_key: Option<SecretString>,
    pub stripe_webhook_secret: Option<SecretString>,
    pub smtp_url: Option<SecretString>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("data"),
            synchronous: Synchronous::Full,
            read_pool_size: 4,
            public_base_url: "http://localhost:8000".into(),
            jwt_issuer: "audiostudio".into(),
            jwt_audience: "audiostudio-api".into(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_days: 30,
            refresh_reuse_grace_secs: 10,
            argon2_memory_kib: argon2::Params::DEFAULT_M_COST,
            argon2_iterations: argon2::Params::DEFAULT_T_COST,
            argon2_parallelism: argon2::Params::DEFAULT_P_COST,
            hash_concurrency: 0,
            login_max_failures: 5,
            login_failure_window_secs: 15 * 60,
            login_lockout_secs: 15 * 60,
            rate_limit_login_per_minute: 20,
            rate_limit_register_per_hour: 20,
            rate_limit_password_reset_per_hour: 10,
            resend_verification_interval_secs: 60,
            password_reset_email_interval_secs: 60,
            email_from: "audiostudio <no-reply@localhost>".into(),
            email_max_attempts: 8,
            token_features: [
                "text_to_speech",
                "voice_clone",
                "music_generation",
                "stem_separation",
                "transcription",
                "audio_enhancement",
                "sound_effects",
            ]
            .map(String::from)
            .to_vec(),
            hold_default_ttl_secs: 600,
            hold_max_ttl_secs: 24 * 3600,
            social_daily_reward_cap: 500,
            token_sweep_interval_secs: 30,
            stripe_api_base: "https://api.stripe.com".into(),
            billing_success_url: "http://localhost:8000/billing/success".into(),
            billing_cancel_url: "http://localhost:8000/billing/cancel".into(),
            billing_redirect_origins: Vec::new(),
            stripe_accept_other_mode: false,
            stripe_webhook_tolerance_secs: 300,
            webhook_max_attempts: 8,
            jwt_secret: None,
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            smtp_url: None,
        }
    }
}

/// The figment every setting comes from: code defaults, then the config file, then
/// `ROCKET_*` variables, then the conventional secret variables.
pub fn figment(config_file: Option<&Path>) -> Figment {
    let file = config_file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(Env::var_or("ROCKET_CONFIG", "Rocket.toml")));
    Figment::from(rocket::Config::default())
        // Rocket trusts X-Real-IP by default; behind no proxy that lets anyone pick their IP.
        .merge(Serialized::default("ip_header", false))
        .merge(Serialized::default("limits.json", "64 KiB"))
        .merge(Serialized::default("limits.string", "64 KiB"))
        .merge(Toml::file(file).nested())
        .merge(
            Env::prefixed("ROCKET_")
                .ignore(&["PROFILE", "CONFIG"])
                .global(),
        )
        .merge(Env::raw().only(&RAW_ENV_VARS).global())
        .select(Profile::from_env_or(
            "ROCKET_PROFILE",
            rocket::Config::DEFAULT_PROFILE,
        ))
}

/// Names each bad key the way an operator writes it, in Rocket.toml and in the environment.
fn explain(errors: rocket::figment::Error) -> anyhow::Error {
    let lines: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let key = e.path.join(".").to_lowercase();
            let env = if RAW_ENV_VARS.iter().any(|v| v.eq_ignore_ascii_case(&key)) {
                key.to_uppercase()
            } else {
                format!("ROCKET_{}", key.replace('.', "_").to_uppercase())
            };
            let origin = e
                .metadata
                .as_ref()
                .map_or_else(String::new, |m| format!(" (from {})", m.name));
            format!("invalid configuration: {key} ({env}): {}{origin}", e.kind)
        })
        .collect();
    anyhow::anyhow!(
        "{}\nfix: correct that key in Rocket.toml or its environment variable (see the comments in Rocket.toml)",
        lines.join("\n")
    )
}

impl Settings {
    /// Extracts and validates the settings; the error names the key and the fix.
    pub fn from_figment(figment: &Figment) -> anyhow::Result<Settings> {
        let settings: Settings = figment.extract().map_err(explain)?;
        // Rocket's own keys (port, address, limits, ...) are checked here too, with the same messages.
        figment.extract::<rocket::Config>().map_err(explain)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(self.public_base_url.starts_with("http://")
            || self.public_base_url.starts_with("https://"))
            || rocket::http::uri::Absolute::parse(&self.public_base_url).is_err()
        {
            bail!(
                "invalid configuration: public_base_url = {:?} is not an absolute http(s) URL\nfix: set ROCKET_PUBLIC_BASE_URL to the address users reach the server at, e.g. https://audio.example.com",
                self.public_base_url
            );
        }
        if let Some(secret) = &self.jwt_secret
            && secret.expose_secret().len() < 32
        {
            bail!(
                "invalid configuration: JWT_SECRET is {} bytes long; it needs at least 32\nfix: use a long random value, e.g. `openssl rand -base64 48`, or unset it to let audiostudio generate one",
                secret.expose_secret().len()
            );
        }
        argon2::Params::new(
            self.argon2_memory_kib,
            self.argon2_iterations,
            self.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid configuration: argon2_memory_kib / argon2_iterations / argon2_parallelism: {e}\nfix: remove them to use the OWASP defaults (19456, 2, 1)"))?;
        if !(self.stripe_api_base.starts_with("http://")
            || self.stripe_api_base.starts_with("https://"))
        {
            bail!(
                "invalid configuration: stripe_api_base = {:?} is not an http(s) URL\nfix: unset STRIPE_API_BASE to use https://api.stripe.com",
                self.stripe_api_base
            );
        }
        if !(1..=64).contains(&self.read_pool_size) {
            bail!(
                "invalid configuration: read_pool_size = {} is out of range\nfix: use a value from 1 to 64",
                self.read_pool_size
            );
        }
        for (key, value) in [
            ("login_max_failures", self.login_max_failures),
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
            ("email_max_attempts", self.email_max_attempts),
        ] {
            if value == 0 {
                bail!(
                    "invalid configuration: {key} must be at least 1\nfix: set it to a positive number"
                );
            }
        }
        const TEN_YEARS_SECS: u64 = 10 * 366 * 24 * 3600;
        for (key, value, max) in [
            (
                "access_token_ttl_secs",
                self.access_token_ttl_secs,
                TEN_YEARS_SECS,
            ),
            ("refresh_token_ttl_days", self.refresh_token_ttl_days, 3660),
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
        for (key, value) in [
            ("refresh_reuse_grace_secs", self.refresh_reuse_grace_secs),
            (
                "resend_verification_interval_secs",
                self.resend_verification_interval_secs,
            ),
            (
                "password_reset_email_interval_secs",
                self.password_reset_email_interval_secs,
            ),
        ] {
            if value > TEN_YEARS_SECS {
                bail!(
                    "invalid configuration: {key} = {value} is out of range\nfix: use at most {TEN_YEARS_SECS}"
                );
            }
        }
        if self.token_features.is_empty()
            || self.token_features.iter().any(|f| {
                f.is_empty()
                    || f.len() > 64
                    || !f
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
        {
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
        self.email_from
            .parse::<lettre::message::Mailbox>()
            .with_context(|| format!("invalid configuration: email_from = {:?} is not a mailbox\nfix: use a form like `audiostudio <no-reply@example.com>`", self.email_from))?;
        Ok(())
    }

    /// The argon2 cost, already checked by `validate`.
    pub fn argon2_params(&self) -> anyhow::Result<argon2::Params> {
        argon2::Params::new(
            self.argon2_memory_kib,
            self.argon2_iterations,
            self.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("audiostudio.db")
    }

    /// Each running hash holds `argon2_memory_kib`; the default keeps a login storm
    /// under ~80 MiB of hash buffers whatever the core count.
    pub fn hash_concurrency(&self) -> usize {
        match self.hash_concurrency {
            0 => std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(4),
            n => n,
        }
    }

    /// The effective settings as `key = value` lines, secrets masked.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        fn masked(secret: &Option<SecretString>) -> String {
            match secret {
                Some(_) => "******** (set)".into(),
                None => "(not set)".into(),
            }
        }
        vec![
            ("data_dir", self.data_dir.display().to_string()),
            ("database", self.database_path().display().to_string()),
            ("synchronous", self.synchronous.pragma().into()),
            ("read_pool_size", self.read_pool_size.to_string()),
            ("public_base_url", self.public_base_url.clone()),
            ("jwt_issuer", self.jwt_issuer.clone()),
            ("jwt_audience", self.jwt_audience.clone()),
            (
                "access_token_ttl_secs",
                self.access_token_ttl_secs.to_string(),
            ),
            (
                "refresh_token_ttl_days",
                self.refresh_token_ttl_days.to_string(),
            ),
            (
                "refresh_reuse_grace_secs",
                self.refresh_reuse_grace_secs.to_string(),
            ),
            ("argon2_memory_kib", self.argon2_memory_kib.to_string()),
            ("argon2_iterations", self.argon2_iterations.to_string()),
            ("argon2_parallelism", self.argon2_parallelism.to_string()),
            ("hash_concurrency", self.hash_concurrency().to_string()),
            ("login_max_failures", self.login_max_failures.to_string()),
            (
                "login_failure_window_secs",
                self.login_failure_window_secs.to_string(),
            ),
            ("login_lockout_secs", self.login_lockout_secs.to_string()),
            (
                "rate_limit_login_per_minute",
                self.rate_limit_login_per_minute.to_string(),
            ),
            (
                "rate_limit_register_per_hour",
                self.rate_limit_register_per_hour.to_string(),
            ),
            (
                "rate_limit_password_reset_per_hour",
                self.rate_limit_password_reset_per_hour.to_string(),
            ),
            (
                "resend_verification_interval_secs",
                self.resend_verification_interval_secs.to_string(),
            ),
            (
                "password_reset_email_interval_secs",
                self.password_reset_email_interval_secs.to_string(),
            ),
            ("email_from", self.email_from.clone()),
            ("email_max_attempts", self.email_max_attempts.to_string()),
            ("token_features", self.token_features.join(", ")),
            (
                "hold_default_ttl_secs",
                self.hold_default_ttl_secs.to_string(),
            ),
            ("hold_max_ttl_secs", self.hold_max_ttl_secs.to_string()),
            (
                "social_daily_reward_cap",
                self.social_daily_reward_cap.to_string(),
            ),
            (
                "token_sweep_interval_secs",
                self.token_sweep_interval_secs.to_string(),
            ),
            (
                "stripe_api_base (STRIPE_API_BASE)",
                self.stripe_api_base.clone(),
            ),
            ("billing_success_url", self.billing_success_url.clone()),
            ("billing_cancel_url", self.billing_cancel_url.clone()),
            (
                "billing_redirect_origins",
                self.billing_redirect_origins.join(", "),
            ),
            (
                "stripe_accept_other_mode",
                self.stripe_accept_other_mode.to_string(),
            ),
            (
                "stripe_webhook_tolerance_secs",
                self.stripe_webhook_tolerance_secs.to_string(),
            ),
            (
                "webhook_max_attempts",
                self.webhook_max_attempts.to_string(),
            ),
            ("JWT_SECRET", masked(&self.jwt_secret)),
            ("STRIPE_SECRET_KEY", masked(&self.stripe_secret_key)),
            ("STRIPE_WEBHOOK_SECRET", masked(&self.stripe_webhook_secret)),
            ("SMTP_URL", masked(&self.smtp_url)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_configuration_is_valid_and_trusts_no_proxy_header() {
        let figment = figment(Some(Path::new("/nonexistent/Rocket.toml")));
        let settings = Settings::from_figment(&figment).unwrap();
        assert_eq!(settings.synchronous, Synchronous::Full);
        assert_eq!(settings.data_dir, PathBuf::from("data"));
        let rocket: rocket::Config = figment.extract().unwrap();
        assert!(rocket.ip_header.is_none());
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let figment = figment(Some(Path::new("/nonexistent/Rocket.toml")))
            .merge(Serialized::global("read_pool_size", "many"));
        let err = Settings::from_figment(&figment).unwrap_err().to_string();
        assert!(
            err.contains("read_pool_size (ROCKET_READ_POOL_SIZE)"),
            "{err}"
        );
        let bad_port = super::figment(Some(Path::new("/nonexistent/Rocket.toml")))
            .merge(Serialized::global("port", "eighty"));
        let err = Settings::from_figment(&bad_port).unwrap_err().to_string();
        assert!(err.contains("port (ROCKET_PORT)"), "{err}");
        let figment = figment.merge(Serialized::global("jwt_secret", "short"));
        let err = Settings::from_figment(&figment).unwrap_err().to_string();
        assert!(
            err.contains("read_pool_size") || err.contains("JWT_SECRET"),
            "{err}"
        );
    }
}
