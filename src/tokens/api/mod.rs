//! The token routes over HTTP, one flow per file: balance, ledger, packs, spends, holds,
//! admin grants, social rewards (and their review) and analytics.

pub mod analytics;
pub mod balance;
pub mod checks;
pub mod claims;
pub mod grants;
pub mod holds;
pub mod packs;
pub mod social;
pub mod spend;
pub mod transactions;

use rocket::{Route, routes};

use crate::http::error::ApiError;
use crate::tokens::ledger::LedgerError;

/// The routes under `/api/tokens`.
pub fn routes() -> Vec<Route> {
    routes![
        balance::get_balance,
        transactions::list_transactions,
        packs::list_packs,
        spend::use_tokens,
        holds::create_hold,
        holds::capture_hold,
        holds::release_hold,
        holds::list_holds,
        grants::add_tokens,
        social::list_tasks,
        social::claim_task,
        analytics::my_analytics,
    ]
}

/// The routes under `/api/admin`: the review of social claims, analytics across users.
pub fn admin_routes() -> Vec<Route> {
    routes![
        claims::list_claims,
        claims::approve_claim,
        claims::reject_claim,
        analytics::all_analytics,
    ]
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Insufficient { .. } => ApiError::PaymentRequired(e.to_string()),
            LedgerError::HoldNotFound => ApiError::NotFound,
            LedgerError::HoldNotOpen(_) => ApiError::Conflict(e.to_string()),
            LedgerError::CaptureTooLarge { .. } => ApiError::field("amount", e.to_string()),
            LedgerError::InvalidAmount(_) => ApiError::field("amount", e.to_string()),
            LedgerError::ReferenceConflict(_) => ApiError::Conflict(e.to_string()),
            LedgerError::Corrupt(_) | LedgerError::Sqlite(_) => ApiError::Internal(e.into()),
        }
    }
}
