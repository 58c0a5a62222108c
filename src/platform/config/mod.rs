//! Typed settings from Rocket's figment, validated once at startup with messages that say how to fix them.
//!
//! Each key is declared once, in its section (`settings_section!`: name, type, default,
//! doc); sections are read from the top level of the same figment, so operators write
//! every key flat, in Rocket.toml and as `ROCKET_<KEY>`. A test checks that every key is
//! documented in Rocket.toml and the README.

pub(crate) mod section;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rocket::figment::providers::{Env, Format, Serialized, Toml};
use rocket::figment::{Figment, Profile};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use section::settings_section;

/// Environment variables read under their conventional names, without the `ROCKET_` prefix
/// (the secrets, and the Stripe API base URL).
pub const RAW_ENV_VARS: [&str; 5] = [
    "JWT_SECRET",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "SMTP_URL",
    "STRIPE_API_BASE",
];

const TEN_YEARS_SECS: u64 = 10 * 366 * 24 * 3600;

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

settings_section! {
    /// Where the data lives and how SQLite keeps it.
    pub struct Storage {
        data_dir: PathBuf = PathBuf::from("data"),
        synchronous: Synchronous = Synchronous::Full,
        read_pool_size: u32 = 4,
    }
}

settings_section! {
    /// How the server is reached from outside.
    pub struct Server {
        /// Links in emails are built from this, never from the Host header.
        public_base_url: String = "http://localhost:8000".into(),
    }
}

settings_section! {
    /// Access tokens, sessions, password hashing and the per-account lockout.
    pub struct Auth {
        jwt_issuer: String = "audiostudio".into(),
        jwt_audience: String = "audiostudio-api".into(),
        access_token_ttl_secs: u64 = 15 * 60,
        refresh_token_ttl_days: u64 = 30,
        refresh_reuse_grace_secs: u64 = 10,
        argon2_memory_kib: u32 = argon2::Params::DEFAULT_M_COST,
        argon2_iterations: u32 = argon2::Params::DEFAULT_T_COST,
        argon2_parallelism: u32 = argon2::Params::DEFAULT_P_COST,
        /// How many password hashes may run at once; 0 means one per CPU core (at most 4).
        hash_concurrency: usize = 0,
        login_max_failures: u32 = 5,
        login_failure_window_secs: u64 = 15 * 60,
        login_lockout_secs: u64 = 15 * 60,
    }
}

settings_section! {
    /// Per-IP and per-account limits.
    pub struct RateLimits {
        rate_limit_login_per_minute: u32 = 20,
        rate_limit_register_per_hour: u32 = 20,
        rate_limit_password_reset_per_hour: u32 = 10,
        resend_verification_interval_secs: u64 = 60,
        password_reset_email_interval_secs: u64 = 60,
    }
}

settings_section! {
    /// Outgoing email (the SMTP server itself is the secret `SMTP_URL`).
    pub struct Email {
        email_from: String = "audiostudio <no-reply@localhost>".into(),
        email_max_attempts: u32 = 8,
    }
}

settings_section! {
    /// The token economy.
    pub struct Tokens {
        /// The job features tokens can be spent on; anything else is refused.
        token_features: Vec<String> = [
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
        hold_default_ttl_secs: u64 = 600,
        hold_max_ttl_secs: u64 = 24 * 3600,
        /// Most reward tokens one user can claim per UTC day from social tasks.
        social_daily_reward_cap: i64 = 500,
        /// How often expired lots and holds are swept (a read never counts them anyway).
        token_sweep_interval_secs: u64 = 30,
    }
}

settings_section! {
    /// Stripe: where it is, where Checkout returns, how webhooks are accepted.
    pub struct Billing {
        /// Stripe's API base URL (env `STRIPE_API_BASE`); tests point it at a local fake.
        stripe_api_base: String = "https://api.stripe.com".into(),
        billing_success_url: String = "http://localhost:8000/billing/success".into(),
        billing_cancel_url: String = "http://localhost:8000/billing/cancel".into(),
        /// Origins success/cancel URLs given by clients may point at (no open redirect);
        /// the origin of `public_base_url` is always allowed.
        billing_redirect_origins: Vec<String> = Vec::new(),
        /// Accept webhook events whose `livemode` differs from the secret key's mode.
        stripe_accept_other_mode: bool = false,
        /// Tolerance for the `Stripe-Signature` timestamp.
        stripe_webhook_tolerance_secs: u64 = 300,
        /// Processing attempts of a stored webhook event before it is marked failed.
        webhook_max_attempts: u32 = 8,
    }
}

settings_section! {
    /// Read under their conventional environment names; never printed.
    pub struct Secrets {
        jwt_secret: Option<SecretString> = None,
        stripe_secret_key: Option<SecretString> = None,
        stripe_webhook_secret: Option<SecretString> = None,
        smtp_url: Option<SecretString> = None,
    }
}

/// Every setting of the application (Rocket's own settings, such as `port`, stay Rocket's).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub storage: Storage,
    pub server: Server,
    pub auth: Auth,
    pub rate_limits: RateLimits,
    pub email: Email,
    pub tokens: Tokens,
    pub billing: Billing,
    pub secrets: Secrets,
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
            let origin = e
                .metadata
                .as_ref()
                .map_or_else(String::new, |m| format!(" (from {})", m.name));
            format!(
                "invalid configuration: {key} ({}): {}{origin}",
                env_name(&key),
                e.kind
            )
        })
        .collect();
    anyhow::anyhow!(
        "{}\nfix: correct that key in Rocket.toml or its environment variable (see the comments in Rocket.toml)",
        lines.join("\n")
    )
}

/// The environment variable that sets `key`.
fn env_name(key: &str) -> String {
    if RAW_ENV_VARS.iter().any(|v| v.eq_ignore_ascii_case(key)) {
        key.to_uppercase()
    } else {
        format!("ROCKET_{}", key.replace('.', "_").to_uppercase())
    }
}

impl Settings {
    /// Every key of every section, as operators write them.
    pub const SECTION_KEYS: [&[&str]; 8] = [
        Storage::KEYS,
        Server::KEYS,
        Auth::KEYS,
        RateLimits::KEYS,
        Email::KEYS,
        Tokens::KEYS,
        Billing::KEYS,
        Secrets::KEYS,
    ];

    /// Extracts and validates the settings; the error names the key and the fix.
    pub fn from_figment(figment: &Figment) -> anyhow::Result<Settings> {
        let settings = Settings {
            storage: figment.extract().map_err(explain)?,
            server: figment.extract().map_err(explain)?,
            auth: figment.extract().map_err(explain)?,
            rate_limits: figment.extract().map_err(explain)?,
            email: figment.extract().map_err(explain)?,
            tokens: figment.extract().map_err(explain)?,
            billing: figment.extract().map_err(explain)?,
            secrets: figment.extract().map_err(explain)?,
        };
        // Rocket's own keys (port, address, limits, ...) are checked here too, with the same messages.
        figment.extract::<rocket::Config>().map_err(explain)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.storage.validate()?;
        self.server.validate()?;
        self.auth.validate()?;
        self.rate_limits.validate()?;
        self.email.validate()?;
        self.tokens.validate()?;
        self.billing.validate()?;
        self.secrets.validate()
    }

    /// The argon2 cost, already checked by `validate`.
    pub fn argon2_params(&self) -> anyhow::Result<argon2::Params> {
        self.auth.argon2_params()
    }

    pub fn database_path(&self) -> PathBuf {
        self.storage.data_dir.join("audiostudio.db")
    }

    /// Each running hash holds `argon2_memory_kib`; the default keeps a login storm
    /// under ~80 MiB of hash buffers whatever the core count.
    pub fn hash_concurrency(&self) -> usize {
        match self.auth.hash_concurrency {
            0 => std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(4),
            n => n,
        }
    }

    /// The effective settings as `key = value` lines, secrets masked; secrets and other
    /// raw environment variables are named as operators set them.
    pub fn describe(&self) -> Vec<(String, String)> {
        let sections = [
            self.storage.lines(),
            self.server.lines(),
            self.auth.lines(),
            self.rate_limits.lines(),
            self.email.lines(),
            self.tokens.lines(),
            self.billing.lines(),
            self.secrets.lines(),
        ];
        let mut out = Vec::new();
        for (key, value) in sections.into_iter().flatten() {
            let raw = RAW_ENV_VARS.iter().find(|v| v.eq_ignore_ascii_case(key));
            let label = match raw {
                Some(var) if Secrets::KEYS.contains(&key) => (*var).to_owned(),
                Some(var) => format!("{key} ({var})"),
                None => key.to_owned(),
            };
            let value = match key {
                "hash_concurrency" => self.hash_concurrency().to_string(),
                _ => value,
            };
            out.push((label, value));
            if key == "data_dir" {
                out.push((
                    "database".to_owned(),
                    self.database_path().display().to_string(),
                ));
            }
        }
        out
    }
}

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

impl Storage {
    fn validate(&self) -> anyhow::Result<()> {
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
    fn validate(&self) -> anyhow::Result<()> {
        if !http_url(&self.public_base_url)
            || rocket::http::uri::Absolute::parse(&self.public_base_url).is_err()
        {
            bail!(
                "invalid configuration: public_base_url = {:?} is not an absolute http(s) URL\nfix: set ROCKET_PUBLIC_BASE_URL to the address users reach the server at, e.g. https://audio.example.com",
                self.public_base_url
            );
        }
        Ok(())
    }
}

impl Auth {
    fn argon2_params(&self) -> anyhow::Result<argon2::Params> {
        argon2::Params::new(
            self.argon2_memory_kib,
            self.argon2_iterations,
            self.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.argon2_params().map_err(|e| anyhow::anyhow!("invalid configuration: argon2_memory_kib / argon2_iterations / argon2_parallelism: {e}\nfix: remove them to use the OWASP defaults (19456, 2, 1)"))?;
        at_least_one(&[("login_max_failures", self.login_max_failures)])?;
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
        at_most_ten_years(&[("refresh_reuse_grace_secs", self.refresh_reuse_grace_secs)])
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
    fn validate(&self) -> anyhow::Result<()> {
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
    fn validate(&self) -> anyhow::Result<()> {
        at_least_one(&[("email_max_attempts", self.email_max_attempts)])?;
        self.email_from
            .parse::<lettre::message::Mailbox>()
            .with_context(|| format!("invalid configuration: email_from = {:?} is not a mailbox\nfix: use a form like `audiostudio <no-reply@example.com>`", self.email_from))?;
        Ok(())
    }
}

impl Tokens {
    fn validate(&self) -> anyhow::Result<()> {
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
        Ok(())
    }
}

impl Billing {
    fn validate(&self) -> anyhow::Result<()> {
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
    fn validate(&self) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_configuration_is_valid_and_trusts_no_proxy_header() {
        let figment = figment(Some(Path::new("/nonexistent/Rocket.toml")));
        let settings = Settings::from_figment(&figment).unwrap();
        assert_eq!(settings.storage.synchronous, Synchronous::Full);
        assert_eq!(settings.storage.data_dir, PathBuf::from("data"));
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

    #[test]
    fn a_key_of_a_section_is_set_by_its_flat_name() {
        let figment = figment(Some(Path::new("/nonexistent/Rocket.toml")))
            .merge(Serialized::global("hold_max_ttl_secs", 7200))
            .merge(Serialized::global("stripe_secret_key", "sk_test_x"));
        let settings = Settings::from_figment(&figment).unwrap();
        assert_eq!(settings.tokens.hold_max_ttl_secs, 7200);
        let lines = settings.describe();
        let shown = |key: &str| lines.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        assert_eq!(shown("hold_max_ttl_secs").as_deref(), Some("7200"));
        assert_eq!(
            shown("STRIPE_SECRET_KEY").as_deref(),
            Some("******** (set)")
        );
        assert_eq!(shown("database"), Some("data/audiostudio.db".into()));
        assert!(shown("stripe_api_base (STRIPE_API_BASE)").is_some());
    }

    /// Operators learn the keys from Rocket.toml and the README: each must be in both
    /// (secrets and other raw variables by their environment name).
    #[test]
    fn every_key_is_documented_in_rocket_toml_and_the_readme() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let toml = std::fs::read_to_string(root.join("Rocket.toml")).unwrap();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let mut missing = Vec::new();
        for key in Settings::SECTION_KEYS.iter().flat_map(|keys| keys.iter()) {
            let raw = RAW_ENV_VARS.iter().find(|v| v.eq_ignore_ascii_case(key));
            let (in_toml, in_readme) = match raw {
                Some(var) => (toml.contains(var), readme.contains(&format!("`{var}`"))),
                None => (
                    toml.lines().any(|l| {
                        l.trim_start_matches(['#', ' '])
                            .strip_prefix(key)
                            .is_some_and(|rest| rest.trim_start().starts_with('='))
                    }),
                    readme.contains(&format!("`{key}`")),
                ),
            };
            if !in_toml {
                missing.push(format!("{key}: not in Rocket.toml"));
            }
            if !in_readme {
                missing.push(format!("{key}: not in README.md"));
            }
        }
        assert!(
            missing.is_empty(),
            "undocumented settings:\n{}",
            missing.join("\n")
        );
    }
}
