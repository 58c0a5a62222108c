//! audiostudio: the backend of an AI audio studio as one self-hosted binary.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod http;
pub mod openapi;
pub mod tokens;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::{Build, Rocket};
use tokio::sync::Notify;
use utoipa_swagger_ui::SwaggerUi;

use accounts::email::Mailer;
use auth::jwt::JwtKeys;
use auth::password::PasswordHasher;
use clock::{SharedClock, SystemClock};
use config::Settings;
use db::Db;
use http::RateLimits;

/// Everything a request handler may need, managed as Rocket state.
pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub clock: SharedClock,
    pub hasher: PasswordHasher,
    pub jwt: JwtKeys,
    pub limits: Arc<RateLimits>,
    pub mailer: Arc<Mailer>,
    pub mail_wakeup: Arc<Notify>,
    pub started_at: Instant,
}

/// What can be swapped from outside: tests inject a manual clock.
pub struct Deps {
    pub clock: SharedClock,
}

impl Default for Deps {
    fn default() -> Self {
        Deps {
            clock: Arc::new(SystemClock),
        }
    }
}

impl App {
    /// Validates the settings, opens the database (running migrations) and prepares every service.
    pub fn open(settings: Settings, deps: Deps) -> anyhow::Result<App> {
        let db = Db::open(&settings)?;
        let secret = auth::jwt::load_or_create_secret(&settings)?;
        let params = settings.argon2_params()?;
        let hasher = PasswordHasher::new(params, settings.hash_concurrency())?;
        let mailer = Mailer::from_settings(&settings)?;
        Ok(App {
            jwt: JwtKeys::new(&secret, &settings),
            limits: Arc::new(RateLimits::from_settings(&settings)),
            mailer: Arc::new(mailer),
            mail_wakeup: Arc::new(Notify::new()),
            started_at: Instant::now(),
            clock: deps.clock,
            hasher,
            db,
            settings,
        })
    }
}

/// The whole application on `figment`: used by `serve` and by every test.
pub fn build(figment: Figment, deps: Deps) -> anyhow::Result<Rocket<Build>> {
    let settings = Settings::from_figment(&figment)?;
    let app = App::open(settings, deps)?;
    if app.mailer.is_development() {
        tracing::warn!(
            "SMTP_URL is not set: emails are NOT sent; the development mailer prints each whole message, links and tokens included, to the log"
        );
    }
    // Stripe's webhook events are handled by billing: grants, clawbacks, subscription state.
    let webhooks = webhooks::Webhooks::new(Arc::new(billing::events::BillingEvents::new(&app)));
    Ok(rocket::custom(figment)
        .manage(app)
        .manage(webhooks)
        .attach(http::HttpBasics)
        .attach(AdHoc::on_liftoff("background workers", |rocket| {
            Box::pin(async move { start_workers(rocket) })
        }))
        .register("/", error::catchers())
        .mount("/", rocket::routes![health::health])
        .mount("/api/auth", accounts::routes())
        .mount("/api/tokens", tokens::routes())
        .mount("/api/tokens", tokens::social::routes())
        .mount("/api/tokens", tokens::analytics::routes())
        .mount("/api/subscriptions", billing::routes())
        .mount("/api/tokens", billing::token_routes())
        .mount("/api/webhooks", webhooks::routes())
        .mount("/api/admin", admin::api_routes())
        .mount("/api/admin", tokens::social::admin_routes())
        .mount("/api/admin", tokens::analytics::admin_routes())
        .mount("/admin", admin::ui_routes())
        .mount(
            "/",
            SwaggerUi::new("/api/docs/<_..>").url("/api/openapi.json", openapi::document()),
        ))
}

fn start_workers(rocket: &Rocket<rocket::Orbit>) {
    let Some(app) = rocket.state::<App>() else {
        return;
    };
    let from = app.settings.email_from.parse().unwrap_or_else(|_| {
        "audiostudio <no-reply@localhost>"
            .parse()
            .expect("valid mailbox")
    });
    tokio::spawn(accounts::email::run_outbox_worker(
        app.db.clone(),
        app.mailer.clone(),
        from,
        app.settings.email_max_attempts,
        app.clock.clone(),
        app.mail_wakeup.clone(),
        rocket.shutdown(),
    ));
    tokio::spawn(tokens::run_sweeper(
        app.db.clone(),
        app.clock.clone(),
        Duration::from_secs(app.settings.token_sweep_interval_secs),
        rocket.shutdown(),
    ));
    webhooks::spawn_worker(rocket);
    let (limits, mut stop) = (app.limits.clone(), rocket.shutdown());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => limits.retain_recent(),
                _ = &mut stop => break,
            }
        }
    });
}
