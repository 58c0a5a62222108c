//! The sweeper: expires lots and holds past their time, in the background.

use serde_json::json;

use super::ledger::{self, LedgerError};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::SharedClock;
use crate::platform::db::{Db, DbError};

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Expires every lot and hold past its time (the app runs this periodically).
pub async fn sweep_due(db: &Db, clock: &SharedClock) {
    // Work in bounded batches, each its own write, so a mass expiry never holds the
    // writer for long; repeat while a batch found something.
    loop {
        match sweep_once(db, clock).await {
            Ok((0, 0)) => break,
            Ok((tokens, holds)) => tracing::info!(
                tokens_expired = tokens,
                holds_expired = holds,
                "token sweep"
            ),
            Err(e) => {
                tracing::error!(error = %e, "token sweep failed");
                break;
            }
        }
    }
}

/// One batch: (tokens expired, holds expired); the expired holds are audited.
async fn sweep_once(db: &Db, clock: &SharedClock) -> Result<(i64, usize), SweepError> {
    let now = clock.now_ms();
    db.write(move |tx| {
        let tokens = ledger::expire_due(tx, None, now)?;
        let holds = ledger::expire_holds(tx, now)?;
        if !holds.is_empty() {
            let event = Event::new("tokens.holds_expired").details(json!({ "holds": holds }));
            let actor = Actor {
                user_agent: Some("sweeper".into()),
                ..Actor::default()
            };
            audit::record(tx, now, &actor, event)?;
        }
        Ok::<_, SweepError>((tokens, holds.len()))
    })
    .await
}
