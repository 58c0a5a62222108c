//! The application under test: one per test, with its own data directory, database and clock.

use std::path::Path;
use std::sync::Arc;

use audiostudio::clock::ManualClock;
use audiostudio::{App, Deps};
use rocket::figment::Figment;
use rocket::figment::providers::Serialized;
use rocket::local::asynchronous::Client;
use tempfile::TempDir;

pub struct TestApp {
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub dir: TempDir,
}

/// Settings that keep tests fast and out of each other's way; `customize` adds more.
pub async fn spawn_app_with(customize: impl FnOnce(Figment) -> Figment) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let figment = audiostudio::config::figment(Some(Path::new("/nonexistent/Rocket.toml")))
        .merge(Serialized::global("data_dir", dir.path()))
        .merge(Serialized::global("log_level", "off"))
        .merge(Serialized::global("argon2_memory_kib", 1024))
        .merge(Serialized::global("argon2_iterations", 1))
        .merge(Serialized::global("rate_limit_login_per_minute", 10_000))
        .merge(Serialized::global("rate_limit_register_per_hour", 10_000))
        .merge(Serialized::global(
            "rate_limit_password_reset_per_hour",
            10_000,
        ))
        .merge(Serialized::global(
            "public_base_url",
            "https://studio.example.com",
        ));
    let rocket = audiostudio::build(
        customize(figment),
        Deps {
            clock: clock.clone(),
        },
    )
    .unwrap();
    let client = Client::untracked(rocket).await.unwrap();
    TestApp { client, clock, dir }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|f| f).await
}

impl TestApp {
    pub fn clock_now(&self) -> i64 {
        use audiostudio::clock::Clock as _;
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
