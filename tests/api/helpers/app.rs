//! The application under test: one per test, with its own data directory, database and clock.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use audiostudio::platform::clock::{Clock, SystemClock};
use audiostudio::webhooks::EventHandler;
use audiostudio::{App, Deps};
use rocket::figment::Figment;
use rocket::figment::providers::Serialized;
use rocket::local::asynchronous::Client;
use tempfile::TempDir;

/// A clock that only moves when told to, injected through `Deps`.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn starting_now() -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(SystemClock.now_ms())))
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct TestApp {
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub dir: TempDir,
}

/// Limits high enough that no test meets them by accident; a test of a limit lowers it.
const UNREACHED_LIMITS: [(&str, u32); 11] = [
    ("rate_limit_login_per_minute", 10_000),
    ("rate_limit_register_per_hour", 10_000),
    ("rate_limit_password_reset_per_hour", 10_000),
    ("rate_limit_public_per_minute", 100_000),
    ("rate_limit_webhook_per_minute", 100_000),
    ("rate_limit_global_per_minute", 1_000_000),
    ("rate_limit_token_mutations_per_minute", 100_000),
    ("rate_limit_social_claims_per_hour", 100_000),
    ("rate_limit_checkout_per_hour", 100_000),
    ("rate_limit_billing_history_per_minute", 100_000),
    ("rate_limit_account_changes_per_hour", 100_000),
];

/// Settings that keep tests fast and out of each other's way, for an app whose data is in `dir`.
pub fn test_figment(dir: &Path) -> Figment {
    let figment =
        audiostudio::platform::config::figment(Some(Path::new("/nonexistent/Rocket.toml")))
            .merge(Serialized::global("data_dir", dir))
            .merge(Serialized::global("log_level", "off"))
            .merge(Serialized::global("argon2_memory_kib", 1024))
            .merge(Serialized::global("argon2_iterations", 1))
            .merge(Serialized::global("mfa_required_for_admins", false))
            .merge(Serialized::global(
                "public_base_url",
                "https://studio.example.com",
            ));
    UNREACHED_LIMITS.iter().fold(figment, |f, (key, value)| {
        f.merge(Serialized::global(key, value))
    })
}

/// An app built from [`test_figment`] as `customize` changes it, with `event_handler`
/// (when given) handling webhook events in place of billing.
pub async fn spawn_app_handling(
    customize: impl FnOnce(Figment) -> Figment,
    event_handler: Option<Arc<dyn EventHandler>>,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    launch(dir, ManualClock::starting_now(), customize, event_handler).await
}

/// The app on the data of `dir` with `clock`.
async fn launch(
    dir: TempDir,
    clock: Arc<ManualClock>,
    customize: impl FnOnce(Figment) -> Figment,
    event_handler: Option<Arc<dyn EventHandler>>,
) -> TestApp {
    let rocket = audiostudio::build(
        customize(test_figment(dir.path())),
        Deps {
            clock: clock.clone(),
            event_handler,
        },
    )
    .unwrap();
    let client = Client::untracked(rocket).await.unwrap();
    TestApp { client, clock, dir }
}

/// Settings that keep tests fast and out of each other's way; `customize` adds more.
pub async fn spawn_app_with(customize: impl FnOnce(Figment) -> Figment) -> TestApp {
    spawn_app_handling(customize, None).await
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|f| f).await
}

/// `figment` with billing on: Stripe at `base` with `key`, checkouts redirecting only to
/// `origins`, and the default success and cancel pages.
pub fn with_billing(figment: Figment, key: &str, base: &str, origins: &[&str]) -> Figment {
    figment
        .merge(Serialized::global("stripe_secret_key", key))
        .merge(Serialized::global("stripe_api_base", base))
        .merge(Serialized::global("billing_redirect_origins", origins))
        .merge(Serialized::global(
            "billing_success_url",
            "https://studio.example.com/billing/success",
        ))
        .merge(Serialized::global(
            "billing_cancel_url",
            "https://studio.example.com/billing/cancel",
        ))
}

impl TestApp {
    /// The same data directory and clock served by a new app built with `customize`
    /// (a restart with other settings); the old app is dropped first.
    pub async fn restart_with(self, customize: impl FnOnce(Figment) -> Figment) -> TestApp {
        let TestApp { client, clock, dir } = self;
        drop(client);
        launch(dir, clock, customize, None).await
    }

    pub fn clock_now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn app(&self) -> &App {
        self.client.rocket().state::<App>().unwrap()
    }

    /// A read-only view of the database, for asserting what was stored.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("audiostudio.db")).unwrap()
    }
}

/// `audiostudio --data-dir <dir> ...` (an app's data, the app running or not), run from `dir`
/// with a clean environment: no inherited `ROCKET_*`, `AUDIOSTUDIO_*`, `STRIPE_*`, secrets
/// or log filter.
pub fn audiostudio_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_audiostudio"));
    cmd.current_dir(dir).arg("--data-dir").arg(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("ROCKET_")
            || key.starts_with("AUDIOSTUDIO_")
            || key.starts_with("STRIPE_")
        {
            cmd.env_remove(key);
        }
    }
    for key in ["JWT_SECRET", "SMTP_URL", "RUST_LOG"] {
        cmd.env_remove(key);
    }
    cmd
}
