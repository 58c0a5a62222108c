//! `App`: the services every request handler shares, managed as Rocket state.
//!
//! It sits above `auth` (it holds the hasher and the signing keys) and below the
//! features, which take `&State<App>`. The auth guards do not read it: they use the
//! `Db`, `SharedClock` and `Arc<JwtKeys>` managed beside it (see `auth::guards`).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use crate::auth::jwt::JwtKeys;
use crate::auth::password::PasswordHasher;
use crate::http::rate_limit::RateLimits;
use crate::platform::clock::SharedClock;
use crate::platform::config::Settings;
use crate::platform::db::Db;
use crate::platform::mail::Mailer;

/// Everything a request handler may need.
pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub clock: SharedClock,
    pub hasher: PasswordHasher,
    pub jwt: Arc<JwtKeys>,
    pub limits: Arc<RateLimits>,
    pub mailer: Arc<Mailer>,
    /// Notified after a write queues email, so the outbox worker sends it at once.
    pub mail_wakeup: Arc<Notify>,
    pub started_at: Instant,
}

impl App {
    /// Validates the settings, opens the database (running migrations) and prepares every service.
    pub fn open(settings: Settings, clock: SharedClock) -> anyhow::Result<App> {
        let db = Db::open(&settings)?;
        let secret = crate::auth::jwt::load_or_create_secret(&settings)?;
        let params = settings.argon2_params()?;
        let hasher = PasswordHasher::new(params, settings.hash_concurrency())?;
        let mailer = Mailer::from_settings(&settings)?;
        Ok(App {
            jwt: Arc::new(JwtKeys::new(&secret, &settings)),
            limits: Arc::new(RateLimits::from_settings(&settings)),
            mailer: Arc::new(mailer),
            mail_wakeup: Arc::new(Notify::new()),
            started_at: Instant::now(),
            clock,
            hasher,
            db,
            settings,
        })
    }
}
