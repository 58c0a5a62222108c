//! In-process API tests: each test gets its own data directory, database and clock.

mod accounts;
mod analytics;
mod bad_input;
mod billing;
mod billing_events;
mod edge_billing;
mod edge_http;
mod edge_limits;
mod edge_social;
mod email;
mod fake_stripe;
mod helpers;
mod ledger;
mod metrics;
mod security_auth;
mod security_http;
mod security_rewards;
mod security_seed;
mod social;
mod throttling;
mod tokens;
mod webhooks;
