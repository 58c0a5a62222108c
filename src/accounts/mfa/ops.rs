//! Changes to an account's two-factor sign-in that are audited and told to its owner by
//! email, shared by the API and the CLI (`users mfa-reset`).

use rusqlite::Transaction;
use serde_json::Value;

use super::store;
use crate::accounts::emails::{self, MfaChange};
use crate::accounts::store::Credentials;
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::mail;

/// Audits `change` of `account` as `action` and queues the notice to its owner.
pub fn record_change(
    tx: &Transaction<'_>,
    base_url: &str,
    account: &Credentials,
    change: MfaChange,
    actor: &Actor,
    now: Millis,
) -> rusqlite::Result<()> {
    let (action, details) = match change {
        MfaChange::Enabled => ("auth.mfa_enabled", Value::Null),
        MfaChange::Disabled => ("auth.mfa_disabled", Value::Null),
        MfaChange::RecoveryCodeUsed { remaining } => (
            "auth.mfa_recovery_code_used",
            serde_json::json!({ "remaining": remaining }),
        ),
        MfaChange::Reset => ("auth.mfa_reset", Value::Null),
    };
    let mut event = Event::new(action).target("user", &account.id);
    if !details.is_null() {
        event = event.details(details);
    }
    audit::record(tx, now, actor, event)?;
    mail::enqueue(
        tx,
        &emails::mfa_notice(base_url, &account.email, change),
        now,
    )
}

/// Removes the account's two-factor sign-in (an operator's reset for a user who lost
/// their authenticator and codes); audited and told to the owner. False, and nothing
/// done, when the account had none.
pub fn reset(
    tx: &Transaction<'_>,
    base_url: &str,
    account: &Credentials,
    actor: &Actor,
    now: Millis,
) -> rusqlite::Result<bool> {
    if !store::remove(tx, &account.id)? {
        return Ok(false);
    }
    record_change(tx, base_url, account, MfaChange::Reset, actor, now)?;
    Ok(true)
}
