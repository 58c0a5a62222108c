//! What every layer stands on, with nothing of the HTTP world: time, settings, the
//! database, the audit chain, outgoing mail, secret tokens and the retry schedule.

pub mod audit;
pub mod backoff;
pub mod backup;
pub mod client;
pub mod clock;
pub mod config;
pub mod connections;
pub mod data_dir;
pub mod db;
pub mod ids;
pub mod mail;
pub mod memory;
pub mod metrics;
pub mod secret_token;
