//! A small Stripe client over reqwest: form-encoded bodies, a pinned API version, idempotent and retried POSTs, typed errors.
//!
//! Use it outside database transactions only: read what you need, call Stripe, then write.
//! Every POST carries the `Idempotency-Key` its caller derives from our own ids, so the
//! client can retry it (429, 5xx, network errors; bounded, exponential backoff with
//! jitter) without ever doing the same thing twice. The secret key is never logged.

mod calls;
mod client;
mod errors;
mod objects;
mod params;
mod retry;

pub use client::Stripe;
pub use errors::{ApiErrorBody, StripeError, StripeResult};
pub use objects::{
    Charge, CheckoutSession, Customer, Invoice, InvoiceLine, List, Metadata, PaymentIntent, Period,
    PortalSession, Price, Product, Recurring, Subscription, SubscriptionItem,
};
pub use params::{
    API_VERSION, CheckoutMode, NewCheckoutSession, Params, Proration, idempotency_key,
};
pub use retry::RetryPolicy;
