//! The whole application: Rocket with every feature's stage, the shared state, the
//! catchers, the API docs and the background workers. Nothing imports this module
//! but `cli` (and the tests).

mod connections;
mod openapi;
mod openapi_rules;
mod workers;

use std::sync::Arc;

use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::{Build, Rocket};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::platform::clock::{SharedClock, SystemClock};
use crate::platform::config::Settings;
use crate::state::App;
use crate::webhooks::EventHandler;
use crate::{accounts, admin, billing, health, http, tokens, webhooks};

pub use openapi::document as openapi_document;

/// What the embedding code may supply instead of the real parts: the tests inject a clock
/// they move, and a scripted webhook event handler in place of billing's.
pub struct Deps {
    pub clock: SharedClock,
    /// `None`: billing handles Stripe's events.
    pub event_handler: Option<Arc<dyn EventHandler>>,
}

impl Default for Deps {
    fn default() -> Self {
        Deps {
            clock: Arc::new(SystemClock),
            event_handler: None,
        }
    }
}

/// The whole application on `figment`: used by `serve` and by every test.
pub fn build(figment: Figment, deps: Deps) -> anyhow::Result<Rocket<Build>> {
    let settings = Settings::from_figment(&figment)?;
    // Before the database opens: its writer records into the (process-wide) recorder.
    crate::platform::metrics::install();
    let app = App::open(settings, deps.clock)?;
    if app.mailer.is_development() {
        tracing::warn!(
            "SMTP_URL is not set: emails are NOT sent; the development mailer prints each whole message, links and tokens included, to the log"
        );
    }
    // Stripe's webhook events are handled by billing: grants, clawbacks, subscription state.
    let handler = deps
        .event_handler
        .unwrap_or_else(|| Arc::new(billing::events::BillingEvents::new(&app)));
    let webhooks = webhooks::Webhooks::new(handler);
    let basics = http::HttpBasics::from_settings(&app.settings);
    let cors = http::cors::Cors::from_settings(&app.settings);
    let connection_limits = connections::limits(&app.settings);
    let swept = connection_limits.clone();
    let rate_limits = app.limits.clone();
    let metrics_access = http::metrics::MetricsAccess::from_settings(&app.settings);
    let document = openapi::document(&app.settings);
    let rocket = rocket::custom(figment)
        // The auth guards read these three; handlers read `App`.
        .manage(app.db.clone())
        .manage(app.clock.clone())
        .manage(app.jwt.clone())
        .manage(rate_limits.clone())
        .manage(metrics_access)
        .manage(app)
        .manage(webhooks)
        .attach(basics)
        .attach(http::EdgeLimits::new(rate_limits))
        .attach(cors)
        .attach(connections::InFlight(connection_limits))
        .attach(AdHoc::on_liftoff("background workers", |rocket| {
            Box::pin(async move {
                workers::start(rocket);
                connections::start_sweeper(rocket, swept);
                crate::platform::memory::release_freed();
            })
        }))
        .register("/", http::error::catchers())
        // In front of every route: bodies that are not JSON get 415 before anything parses them.
        .mount("/api", http::content_type::routes())
        // Before that: a query parameter given twice is a 422.
        .mount("/api", http::query::routes())
        // After every route: OPTIONS on a known path (and CORS preflights) answered.
        .mount("/", http::methods::routes())
        .mount("/", http::metrics::routes())
        .mount(
            "/",
            SwaggerUi::new("/api/docs/<_..>")
                // The page fetches the document from our own route (`openapi::serve`), and
                // shows no online validator badge (an image from validator.swagger.io).
                .config(Config::new(["/api/openapi.json"]).validator_url("none")),
        )
        .manage(openapi::Served::new(&document)?)
        .mount("/", rocket::routes![openapi::serve]);
    let rocket = health::stage(rocket);
    let rocket = accounts::stage(rocket);
    let rocket = tokens::stage(rocket);
    let rocket = billing::stage(rocket);
    let rocket = webhooks::stage(rocket);
    Ok(admin::stage(rocket))
}
