//! Webhook operations for the CLI and the admin API: list stored events, replay one, replay every failed one. Plain functions, no clap, no Rocket.

use super::status::EventStatus;
use super::store::{self, EventSummary, Requeue, RequeueError};
use crate::platform::audit::Actor;
use crate::platform::clock::Millis;
use crate::platform::db::{Db, DbError};

/// Stored events, newest first, optionally only those of `status`.
pub async fn list(
    db: &Db,
    status: Option<EventStatus>,
    limit: u32,
) -> Result<Vec<EventSummary>, DbError> {
    db.read(move |c| Ok::<_, DbError>(store::list(c, status, limit)?))
        .await
}

/// Puts one failed or ignored event back to `pending` with fresh attempts (audited).
/// Wake the worker afterwards if one runs in this process.
pub async fn replay(
    db: &Db,
    event_id: &str,
    actor: &Actor,
    now: Millis,
) -> Result<usize, RequeueError> {
    let (id, actor) = (event_id.to_owned(), actor.clone());
    db.write(move |tx| store::requeue(tx, Requeue::One(&id), &actor, now))
        .await
}

/// Puts every failed event back to `pending` with fresh attempts (audited); how many.
pub async fn replay_failed(db: &Db, actor: &Actor, now: Millis) -> Result<usize, RequeueError> {
    let actor = actor.clone();
    db.write(move |tx| store::requeue(tx, Requeue::AllFailed, &actor, now))
        .await
}
