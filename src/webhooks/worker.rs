//! Processes stored webhook events one at a time: claim in a short write, run the handler outside any transaction, record the outcome in another.

use std::time::Duration;

use rocket::{Orbit, Rocket, Shutdown};

use super::store::{self, Claim, Recorded};
use super::{Handled, HandlerError, StoredEvent, Webhooks};
use crate::platform::clock::{Millis, SharedClock};
use crate::platform::db::{Db, DbError};
use crate::state::App;

/// How often the worker looks for due events when nobody wakes it.
pub const TICK: Duration = Duration::from_secs(5);

/// Longest one handler call may take before it is abandoned and retried later.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a claim lasts: a worker that stops mid-way (crash, kill) leaves its event
/// `processing`, and any worker claims it again once this has passed. Longer than
/// `HANDLER_TIMEOUT`, so a live worker never loses its claim.
pub const LEASE_MS: Millis = 5 * 60 * 1000;

/// Starts the processing worker; called once from `start_workers`. It uses the managed
/// [`Webhooks`] (and so its handler); without one, a private default whose handler
/// ignores every event and which only the periodic tick wakes.
pub fn spawn_worker(rocket: &Rocket<Orbit>) {
    let Some(app) = rocket.state::<App>() else {
        return;
    };
    let webhooks = rocket.state::<Webhooks>().cloned().unwrap_or_else(|| {
        tracing::info!(
            "no webhook event handler registered: stored Stripe events will be marked ignored"
        );
        Webhooks::default()
    });
    tokio::spawn(run(
        app.db.clone(),
        app.clock.clone(),
        app.settings.billing.webhook_max_attempts,
        webhooks,
        rocket.shutdown(),
    ));
}

/// Processes due events until `stop` fires; wakes on `webhooks.wake()` and every `TICK`.
pub async fn run(
    db: Db,
    clock: SharedClock,
    max_attempts: u32,
    webhooks: Webhooks,
    mut stop: Shutdown,
) {
    loop {
        loop {
            // Finish the event in hand, but start no new one once shutting down.
            if has_fired(&mut stop).await {
                return;
            }
            match process_next(&db, &clock, max_attempts, &webhooks).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::error!(error = %e, "webhook worker pass failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = webhooks.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = &mut stop => return,
        }
    }
}

async fn has_fired(stop: &mut Shutdown) -> bool {
    tokio::select! {
        biased;
        _ = stop => true,
        _ = std::future::ready(()) => false,
    }
}

/// Claims the oldest due event, runs the handler on it and records what happened.
/// Returns false when nothing was due.
pub async fn process_next(
    db: &Db,
    clock: &SharedClock,
    max_attempts: u32,
    webhooks: &Webhooks,
) -> Result<bool, DbError> {
    let now = clock.now_ms();
    let claim = db
        .write(move |tx| Ok::<_, DbError>(store::claim_next(tx, now, LEASE_MS, max_attempts)?))
        .await?;
    let Claim::Event(event) = claim else {
        return Ok(false);
    };
    let (id, kind, attempts) = (event.id.clone(), event.event_type.clone(), event.attempts);
    // The handler may call Stripe: no transaction is open here.
    let outcome = dispatch(webhooks, *event).await;
    let now = clock.now_ms();
    let error = outcome.as_ref().err().map(ToString::to_string);
    let recorded = {
        let id = id.clone();
        db.write(move |tx| {
            Ok::<_, DbError>(store::record_outcome(
                tx,
                &id,
                attempts,
                &outcome,
                max_attempts,
                now,
            )?)
        })
        .await?
    };
    match recorded {
        Recorded::Processed => {
            tracing::info!(event_id = %id, event_type = %kind, attempts, "webhook event processed");
        }
        Recorded::Ignored => {
            tracing::info!(event_id = %id, event_type = %kind, "webhook event ignored");
        }
        Recorded::Retry(at) => tracing::warn!(
            event_id = %id, event_type = %kind, attempts,
            retry_in_secs = (at - now) / 1000,
            error = error.as_deref().unwrap_or_default(),
            "webhook event failed; will retry"
        ),
        Recorded::Failed => tracing::error!(
            event_id = %id, event_type = %kind, attempts,
            error = error.as_deref().unwrap_or_default(),
            "webhook event failed for good; replay it with `audiostudio webhooks replay`"
        ),
        Recorded::Lost => tracing::warn!(
            event_id = %id, event_type = %kind,
            "webhook event claim lapsed before its outcome was recorded; another attempt owns it"
        ),
    }
    Ok(true)
}

/// Runs the registered handler in its own task, so a panic or a hang costs one attempt
/// of one event, never the worker.
async fn dispatch(webhooks: &Webhooks, event: StoredEvent) -> Result<Handled, HandlerError> {
    let handler = webhooks.handler();
    let task = tokio::spawn(async move { handler.handle(&event).await });
    let abort = task.abort_handle();
    match tokio::time::timeout(HANDLER_TIMEOUT, task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(join)) if join.is_panic() => {
            let panic = join.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(HandlerError::Retry(anyhow::anyhow!(
                "the event handler panicked: {message}"
            )))
        }
        Ok(Err(_)) => Err(HandlerError::Retry(anyhow::anyhow!(
            "the event handler was cancelled"
        ))),
        Err(_) => {
            abort.abort();
            Err(HandlerError::Retry(anyhow::anyhow!(
                "the event handler did not finish within {} s",
                HANDLER_TIMEOUT.as_secs()
            )))
        }
    }
}
