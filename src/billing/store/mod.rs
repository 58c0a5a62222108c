//! Billing's SQL: plans and packs, Stripe customers, subscriptions as last seen, checkout sessions and pack purchases, the change history.
//!
//! Plain statements on a connection or inside the caller's write transaction; nothing
//! here talks to Stripe. The event handlers use the same functions to record what Stripe
//! tells them (`upsert_subscription`, `record_change`).

mod catalog;
mod checkouts;
mod customers;
mod subscriptions;

pub use catalog::*;
pub use checkouts::*;
pub use customers::*;
pub use subscriptions::{
    Change, ChangeView, SubscriptionRow, changes_of, live_subscription, pending_subscription,
    record_change, subscription_by_stripe_id, subscriptions_of, upsert_subscription,
};

use crate::platform::clock::Millis;

/// Stripe's unix seconds as our milliseconds.
fn secs_to_ms(secs: Option<i64>) -> Option<Millis> {
    secs.and_then(|s| s.checked_mul(1000))
}
