//! The `webhook_events` table: intake, claims with a lease, outcomes with backoff, requeues, listings and the status summary.

mod processing;
mod requeue;
mod summary;

pub use processing::*;
pub use requeue::*;
pub use summary::*;
