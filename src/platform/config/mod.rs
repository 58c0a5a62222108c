//! Typed settings from Rocket's figment, validated once at startup with messages that say how to fix them.
//!
//! Each key is declared once, in its section (`settings_section!`: name, type, default,
//! doc); sections are read from the top level of the same figment, so operators write
//! every key flat, in Rocket.toml and as `ROCKET_<KEY>`. A test checks that every key is
//! documented in Rocket.toml and the README.

pub(crate) mod section;
mod sections;
mod validate;

use std::path::{Path, PathBuf};

use rocket::figment::providers::{Env, Format, Serialized, Toml};
use rocket::figment::{Figment, Profile};

pub use sections::{
    Auth, Billing, Connections, Email, RateLimits, Secrets, Server, ShutdownCheckpoint, Storage,
    Synchronous, Tokens,
};

/// Environment variables read under their conventional names, without the `ROCKET_` prefix
/// (the secrets, and the Stripe API base URL).
pub const RAW_ENV_VARS: [&str; 5] = [
    "JWT_SECRET",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "SMTP_URL",
    "STRIPE_API_BASE",
];

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
    pub connections: Connections,
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
        // No `Server: Rocket` banner telling scanners what they talk to.
        .merge(Serialized::default("ident", false))
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
    pub const SECTION_KEYS: [&[&str]; 9] = [
        Storage::KEYS,
        Server::KEYS,
        Auth::KEYS,
        RateLimits::KEYS,
        Email::KEYS,
        Tokens::KEYS,
        Billing::KEYS,
        Connections::KEYS,
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
            connections: figment.extract().map_err(explain)?,
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
        self.connections.validate()?;
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
            self.connections.lines(),
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
