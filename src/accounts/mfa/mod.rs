//! Two-factor sign-in with TOTP and recovery codes (issue 13): the secret and its
//! sealing (`totp`), recovery codes (`recovery`), the SQL (`store`), the counted check
//! of a second factor that sign-in and disable share (this module), and the changes
//! audited and told to the account's owner by email (`ops`). The endpoints are
//! `accounts::api::mfa_*`; the factor of sessions and the admin rule are in `auth::mfa`.

pub mod ops;
pub mod recovery;
pub mod store;
pub mod totp;

use rusqlite::Transaction;
use serde_json::json;

use super::lockout::{self, AccountLockout, Counter, LockNotice, Policy};
use super::store::{self as accounts_store, Credentials};
use crate::auth::derived::DerivedKey;
use crate::auth::mfa::Factor;
use crate::http::error::{ApiError, ApiResult};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::ids::UserId;
use crate::state::App;
use totp::SealKey;

/// A second factor as presented: a TOTP code, or a recovery code (kept only as its digest).
pub enum Proof {
    Code(String),
    RecoveryCode { digest: String },
}

impl Proof {
    pub fn recovery(key: &DerivedKey, code: &str) -> Proof {
        Proof::RecoveryCode {
            digest: recovery::digest(key, code),
        }
    }

    /// A field that takes either: six digits are a TOTP code, anything else a recovery code.
    pub fn either(key: &DerivedKey, code: &str) -> Proof {
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() == usize::from(totp::DIGITS) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Proof::Code(digits)
        } else {
            Proof::recovery(key, code)
        }
    }
}

/// The sealing key of TOTP secrets, from the app's derived key.
pub fn seal_key(app: &App) -> SealKey {
    SealKey::from_derived(app.jwt.derived())
}

/// Checks `proof` against the account's confirmed enrolment and spends it (a TOTP step
/// is accepted once, and never one older than the last; a recovery code once).
pub fn spend(
    tx: &Transaction<'_>,
    seal: &SealKey,
    user_id: &UserId,
    proof: &Proof,
    now: Millis,
) -> ApiResult<Option<Factor>> {
    match proof {
        Proof::Code(code) => {
            let Some(enrolment) = store::enrolment(tx, user_id)?.filter(|e| e.confirmed) else {
                return Ok(None);
            };
            let secret = seal.open(user_id, &enrolment.secret_sealed)?;
            let now_secs = u64::try_from(now / 1000).unwrap_or(0);
            let Some(step) = secret.matching_step(code, now_secs)? else {
                return Ok(None);
            };
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            Ok(store::use_step(tx, user_id, step)?.then_some(Factor::Totp))
        }
        Proof::RecoveryCode { digest } => {
            Ok(store::use_recovery_code(tx, user_id, digest, now)?.then_some(Factor::RecoveryCode))
        }
    }
}

/// Gives back the attempt a right password reserved when a second factor is still to
/// come: the password was no failure, yet the count (failed codes included) must not be
/// cleared before the code is right, or each login would allow more guesses of it.
/// `locks_until` is the lock that password's own reservation set, if it did.
pub fn refund_password_attempt(
    tx: &Transaction<'_>,
    user_id: &UserId,
    now: Millis,
    policy: &Policy,
    locks_until: Option<Millis>,
) -> rusqlite::Result<()> {
    let mut counter = lockout::login_counter(tx, user_id)?;
    match (counter.locked_until, locks_until) {
        (None, _) => counter.count = counter.count.saturating_sub(1),
        (Some(current), Some(set)) if current == set => {
            counter = Counter {
                count: policy.max_failures.saturating_sub(1),
                window_start: Some(now),
                locked_until: None,
            };
        }
        // Locked by another attempt meanwhile: that lock stands.
        _ => return Ok(()),
    }
    lockout::set_login_counter(tx, user_id, &counter)
}

/// The outcome of a counted attempt at a second factor.
pub enum Attempt {
    Accepted(Factor),
    /// Wrong, or already used; `locks_until` when this attempt locked the account.
    Refused {
        locks_until: Option<Millis>,
    },
}

/// One attempt at a second factor, counted like a password check: the account's lockout
/// reserves it first (a locked account gets its 429, nothing checked), and success
/// clears the count. Runs inside the caller's transaction, which must commit on
/// `Refused` so that the attempt stays counted.
pub fn attempt(
    tx: &Transaction<'_>,
    lockout: &AccountLockout,
    seal: &SealKey,
    user_id: &UserId,
    proof: &Proof,
    now: Millis,
) -> ApiResult<Attempt> {
    let reservation = lockout::reserve_account(tx, user_id, now, &lockout.policy)?;
    let locks_until = lockout.admit(reservation, now)?;
    Ok(match spend(tx, seal, user_id, proof, now)? {
        Some(factor) => {
            accounts_store::clear_login_failures(tx, user_id)?;
            Attempt::Accepted(factor)
        }
        None => Attempt::Refused { locks_until },
    })
}

/// Audits a refused second factor (`during` says where: sign_in, disable); when it
/// locked the account, its owner gets the unlock link, as after wrong passwords.
pub async fn record_refusal(
    app: &App,
    actor: Actor,
    account: &Credentials,
    locks_until: Option<Millis>,
    during: &'static str,
) -> ApiResult<()> {
    let now = app.clock.now_ms();
    let notice = LockNotice::new(app, account, locks_until);
    let user_id = account.id.clone();
    let queued = app
        .db
        .write(move |tx| {
            let event = Event::new("auth.mfa_failed")
                .target("user", &user_id)
                .details(json!({ "during": during, "locked": locks_until.is_some() }));
            audit::record(tx, now, &actor, event)?;
            let queued = match &notice {
                Some(notice) => notice.send(tx, now)?,
                None => false,
            };
            Ok::<_, ApiError>(queued)
        })
        .await?;
    if queued {
        app.mail_wakeup.notify_one();
    }
    Ok(())
}
