//! Why an event handler failed, and whether the webhook worker should try again.

use crate::billing::stripe::StripeError;
use crate::platform::audit::Actor;
use crate::platform::db::DbError;
use crate::tokens::ledger::LedgerError;
use crate::webhooks::HandlerError;

/// A failure of billing's event handling.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Trying again cannot help: an unknown price or pack, someone else's payment,
    /// an object without what we need.
    #[error("{0}")]
    Unusable(String),
    #[error("Stripe: {0}")]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl EventError {
    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            EventError::Unusable(_) => false,
            EventError::Stripe(e) => e.is_transient(),
            EventError::Ledger(LedgerError::ReferenceConflict(_) | LedgerError::HoldNotOpen(_)) => {
                false
            }
            EventError::Ledger(_) | EventError::Sqlite(_) | EventError::Db(_) => true,
        }
    }
}

impl From<EventError> for HandlerError {
    fn from(e: EventError) -> Self {
        if e.is_transient() {
            HandlerError::Retry(anyhow::anyhow!("{e}"))
        } else {
            HandlerError::Permanent(anyhow::anyhow!("{e}"))
        }
    }
}

/// Stripe being down is worth retrying; an object that does not exist is not.
pub(super) fn stripe_failure(e: StripeError) -> HandlerError {
    EventError::Stripe(e).into()
}

/// The actor of what the handlers write: Stripe's webhook.
pub(super) fn sweeper_actor() -> Actor {
    Actor {
        user_agent: Some("stripe-webhook".into()),
        ..Actor::default()
    }
}
