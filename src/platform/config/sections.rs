//! The settings, section by section: each key declared once with its type, default and doc.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::section::settings_section;

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

/// What the server does with the WAL when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShutdownCheckpoint {
    /// Fold the WAL into the database and truncate it: one clean file (the default).
    Truncate,
    /// Fold what no reader needs and never reset the WAL: safe beside Litestream.
    Passive,
    /// Leave the WAL alone (Litestream, or the next start, checkpoints).
    Off,
}

impl ShutdownCheckpoint {
    /// The statement to run, if any.
    pub fn statement(self) -> Option<&'static str> {
        match self {
            ShutdownCheckpoint::Truncate => Some("PRAGMA wal_checkpoint(TRUNCATE);"),
            ShutdownCheckpoint::Passive => Some("PRAGMA wal_checkpoint(PASSIVE);"),
            ShutdownCheckpoint::Off => None,
        }
    }
}

impl super::section::Shown for ShutdownCheckpoint {
    fn shown(&self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

settings_section! {
    /// Where the data lives and how SQLite keeps it.
    pub struct Storage {
        data_dir: PathBuf = PathBuf::from("data"),
        synchronous: Synchronous = Synchronous::Full,
        read_pool_size: u32 = 4,
        /// `truncate`, `passive` (run under Litestream) or `off`.
        wal_checkpoint_on_shutdown: ShutdownCheckpoint = ShutdownCheckpoint::Truncate,
        /// SQLite's automatic checkpoint after a commit once the WAL holds this many pages;
        /// 0 turns it off (under Litestream, which then does every checkpoint).
        wal_autocheckpoint: u32 = 1000,
    }
}

settings_section! {
    /// How the server is reached from outside.
    pub struct Server {
        /// Links in emails are built from this, never from the Host header.
        public_base_url: String = "http://localhost:8000".into(),
        /// `Strict-Transport-Security: max-age=<this>` on every response when
        /// `public_base_url` is https; 0 sends none.
        hsts_max_age_secs: u64 = 365 * 24 * 3600,
        /// Whether `/health` shows the version and the mailer mode to anyone (admins always see them).
        health_details_public: bool = false,
        /// Browser origins (`scheme://host[:port]`) allowed to call `/api` and `/health`
        /// cross-origin; empty sends no CORS headers at all.
        cors_allowed_origins: Vec<String> = Vec::new(),
        /// `Access-Control-Max-Age` on preflight answers: how long a browser may cache one.
        cors_max_age_secs: u64 = 600,
        /// When set, `/metrics` answers only `Authorization: Bearer <this>`; unset, it is
        /// open (keep it off the public internet then).
        metrics_token: Option<SecretString> = None,
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
        /// A session unused (not refreshed) this long ends, whatever its absolute lifetime.
        session_idle_timeout_secs: u64 = 7 * 24 * 3600,
        /// Admins use the admin API only from a session opened with a second factor.
        mfa_required_for_admins: bool = true,
        /// How long the challenge of a password accepted for a two-factor account lasts.
        mfa_challenge_ttl_secs: u64 = 300,
        /// The issuer authenticator apps show next to the account (no `:`).
        mfa_issuer: String = "audiostudio".into(),
        /// An admin console session unused this long ends.
        admin_session_idle_timeout_secs: u64 = 30 * 60,
        /// An admin console session ends this long after sign-in, however much it is used.
        admin_session_absolute_timeout_secs: u64 = 12 * 3600,
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
        /// Per client IP: verify-email, resend-verification, refresh, plans.
        rate_limit_public_per_minute: u32 = 60,
        /// Per source IP on `POST /api/webhooks/stripe` (Stripe's bursts stay far below).
        rate_limit_webhook_per_minute: u32 = 6000,
        /// Per client IP across every route (the webhook intake has its own limit).
        rate_limit_global_per_minute: u32 = 1200,
        /// Per user: token use, hold create/capture/release.
        rate_limit_token_mutations_per_minute: u32 = 120,
        /// Per user: social task claims.
        rate_limit_social_claims_per_hour: u32 = 30,
        /// Per user: checkout, purchase and portal sessions (each opens one at Stripe).
        rate_limit_checkout_per_hour: u32 = 20,
        /// Per user: billing history (each call is a Stripe call).
        rate_limit_billing_history_per_minute: u32 = 10,
        /// Per user: profile updates and password changes.
        rate_limit_account_changes_per_hour: u32 = 30,
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
        /// How often the server runs the ledger check (`audiostudio check`) for the
        /// console's overview; it reads every ledger row. 0: only when an admin runs it.
        ledger_check_interval_secs: u64 = 3600,
        /// Social rewards are claimed only by accounts whose email is verified.
        social_rewards_require_verified_email: bool = true,
        /// Most reward tokens claimed per UTC day from one client address (an IPv6 /64),
        /// across all accounts.
        social_daily_reward_cap_per_ip: i64 = 1000,
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

settings_section! {
    /// Limits on client connections (Rocket 0.5 has none of its own; see `platform::connections`).
    pub struct Connections {
        /// A connection that has not completed a request this long after opening is closed.
        header_read_timeout_secs: u64 = 10,
        /// A connection with no request in flight this long after its last response is closed.
        idle_timeout_secs: u64 = 30,
        /// Open client connections at most (lowered to fit the open-files limit).
        max_connections: usize = 4096,
        /// Open client connections from one IP address at most.
        max_connections_per_ip: usize = 256,
    }
}
