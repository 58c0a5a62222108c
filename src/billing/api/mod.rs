//! Billing's routes, one flow per file, with their request and response types.

pub mod cancel;
mod changes;
pub mod checkout;
pub mod checkout_session;
pub mod checkout_status;
pub mod current;
mod fields;
pub mod history;
pub mod plans;
pub mod portal;
pub mod purchase;
pub mod resume;
pub mod update;

pub use checkout_session::ensure_customer;
pub use fields::stripe_for;
