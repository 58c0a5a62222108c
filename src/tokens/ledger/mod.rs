//! The ledger: lots in, debits out, holds in between; every balance change is one appended row.
//!
//! All functions run inside the caller's write transaction. For every user they keep
//! `users.token_balance == SUM(token_transactions.amount) == SUM(token_lots.remaining)`
//! and `users.held_tokens == SUM(open holds)`; `check` verifies it.

mod check;
mod clawback;
mod debit;
mod entry;
mod expiry;
mod grant;
mod holds;
mod kinds;
mod views;

pub use check::{Mismatch, check};
pub use clawback::{Clawback, claw_back};
pub use debit::{Debit, debit};
pub use entry::TransactionView;
pub use expiry::expire_due;
pub use grant::{Grant, Granted, grant};
pub use holds::{
    HoldView, capture_hold, create_hold, expire_holds, find_hold, list_holds, release_hold,
};
pub use kinds::{HoldStatus, Source, TransactionKind};
pub use views::{BalanceView, Expiring, available, balance, transactions};

/// The largest amount one call may move; far above any real job, far below overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("not enough tokens: the balance is {balance}, {needed} needed")]
    Insufficient { balance: i64, needed: i64 },
    #[error("no such hold")]
    HoldNotFound,
    #[error("the hold is {0}, not open")]
    HoldNotOpen(HoldStatus),
    #[error("cannot capture {requested}: the hold reserved only {held}")]
    CaptureTooLarge { requested: i64, held: i64 },
    #[error("an amount must be from 1 to {max}, not {0}", max = MAX_AMOUNT)]
    InvalidAmount(i64),
    #[error("reference {0} already minted a lot for another user or amount")]
    ReferenceConflict(String),
    #[error("ledger invariant broken: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// An amount one call may move: 1 to `MAX_AMOUNT`.
fn positive_amount(amount: i64) -> Result<(), LedgerError> {
    if (1..=MAX_AMOUNT).contains(&amount) {
        Ok(())
    } else {
        Err(LedgerError::InvalidAmount(amount))
    }
}
