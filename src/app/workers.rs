//! The background workers, started at liftoff and stopped by Rocket's shutdown.

use std::time::Duration;

use rocket::{Orbit, Rocket, Shutdown};

use crate::state::App;
use crate::{admin, platform, tokens, webhooks};

pub(super) fn start(rocket: &Rocket<Orbit>) {
    let Some(app) = rocket.state::<App>() else {
        return;
    };
    let from = app.settings.email.email_from.parse().unwrap_or_else(|_| {
        "audiostudio <no-reply@localhost>"
            .parse()
            .expect("valid mailbox")
    });
    tokio::spawn(platform::mail::run_outbox_worker(
        app.db.clone(),
        app.mailer.clone(),
        from,
        app.settings.email.email_max_attempts,
        app.clock.clone(),
        app.mail_wakeup.clone(),
        rocket.shutdown(),
    ));
    let (db, clock) = (app.db.clone(), app.clock.clone());
    let every = Duration::from_secs(app.settings.tokens.token_sweep_interval_secs);
    spawn_periodic(every, rocket.shutdown(), move || {
        let (db, clock) = (db.clone(), clock.clone());
        async move { tokens::sweep_due(&db, &clock).await }
    });
    webhooks::spawn_worker(rocket);
    let every = app.settings.tokens.ledger_check_interval_secs;
    if let (Some(last), true) = (
        rocket.state::<admin::overview::LastLedgerCheck>(),
        every > 0,
    ) {
        let (db, clock, last) = (app.db.clone(), app.clock.clone(), last.clone());
        spawn_periodic(Duration::from_secs(every), rocket.shutdown(), move || {
            let (db, clock, last) = (db.clone(), clock.clone(), last.clone());
            async move { check_ledger(&db, clock.now_ms(), &last).await }
        });
    }
    let limits = app.limits.clone();
    spawn_periodic(Duration::from_secs(60), rocket.shutdown(), move || {
        limits.retain_recent();
        std::future::ready(())
    });
}

/// Runs `task` now and then every `every` until `stop` fires; a run in progress
/// finishes first.
fn spawn_periodic<F, Fut>(every: Duration, mut stop: Shutdown, mut task: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            task().await;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stop => break,
            }
        }
    });
}

/// The ledger check (`audiostudio check`), its outcome kept for the console's overview.
async fn check_ledger(
    db: &platform::db::Db,
    now: platform::clock::Millis,
    last: &admin::overview::LastLedgerCheck,
) {
    match db
        .read(|c| Ok::<_, platform::db::DbError>(tokens::ops::check(c)?))
        .await
    {
        Ok((users, mismatches)) => {
            if !mismatches.is_empty() {
                tracing::error!(
                    users,
                    mismatches = mismatches.len(),
                    "the ledger check found inconsistent users; run `audiostudio check`"
                );
            }
            last.record(now, mismatches.is_empty());
        }
        Err(e) => tracing::warn!(error = %e, "the ledger check could not run"),
    }
}
