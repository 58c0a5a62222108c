//! audiostudio: the backend of an AI audio studio as one self-hosted binary.
//!
//! Modules are layered and imports only point down (`tests/architecture.rs` enforces it):
//! `platform` (clock, config, db, audit, mail) <- `http` (errors, parsing, idempotency,
//! limits) <- `auth` (passwords, tokens, sessions, guards) <- `state` (`App`) <- the
//! features (`health`, `accounts` <- `tokens` <- `billing`, `webhooks`, `admin`) <- `app`
//! and `cli`, which nothing imports.

pub mod platform;

pub mod http;

pub mod auth;

pub mod state;

pub mod accounts;
pub mod admin;
pub mod billing;
pub mod health;
pub mod tokens;
pub mod webhooks;

pub mod app;
pub mod cli;

pub use app::Deps;
pub use app::build;
pub use state::App;
