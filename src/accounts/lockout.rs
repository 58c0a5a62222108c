//! The per-account lockout that login and change-password share.
//!
//! Every password check first reserves an attempt, atomically (in a write job) and before
//! any hashing: failures plus attempts in flight never exceed `login_max_failures` per
//! window, and once they reach it the account is locked, so every further attempt, with
//! the right password or a wrong one, gets the same 429 without being checked. A verified
//! password clears the counter. Unknown emails get the same counter, kept in memory, so
//! a lockout does not tell which addresses have accounts. When an account locks, its
//! owner is emailed a link that lifts the lock (the lock is global, so anyone can cause
//! one; the link lets the owner end it at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Transaction, params};

use super::emails;
use super::store::Credentials;
use crate::auth::derived::DerivedKey;
use crate::http::error::{ApiError, ApiResult, Throttle};
use crate::platform::clock::Millis;
use crate::platform::ids::UserId;
use crate::platform::mail::{self, Email};
use crate::state::App;

/// The login-throttling policy, from settings.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_failures: u32,
    pub window_ms: Millis,
    pub lockout_ms: Millis,
}

/// Attempts counted in the current window, and the lock, of one account or unknown email.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub count: u32,
    pub window_start: Option<Millis>,
    pub locked_until: Option<Millis>,
}

/// The answer to "may this password be checked?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Check it; `locks_until` is set when this was the last attempt the window allows
    /// (the account is locked from now unless this or another attempt in flight succeeds).
    Granted { locks_until: Option<Millis> },
    /// Locked: answer 429 without checking anything.
    Locked { until: Millis },
}

impl Counter {
    /// Counts one attempt, if the policy still allows one.
    pub fn reserve(&mut self, now: Millis, policy: &Policy) -> Reservation {
        if let Some(until) = self.locked_until.filter(|until| *until > now) {
            return Reservation::Locked { until };
        }
        let in_window = self
            .window_start
            .is_some_and(|start| now.saturating_sub(start) <= policy.window_ms);
        if !in_window || self.locked_until.is_some() {
            *self = Counter {
                count: 0,
                window_start: Some(now),
                locked_until: None,
            };
        }
        self.count = self.count.saturating_add(1);
        if self.count < policy.max_failures {
            return Reservation::Granted { locks_until: None };
        }
        let until = now.saturating_add(policy.lockout_ms);
        *self = Counter {
            count: 0,
            window_start: None,
            locked_until: Some(until),
        };
        Reservation::Granted {
            locks_until: Some(until),
        }
    }

    /// When this counter no longer holds anything (its window and its lock are over).
    fn spent_at(&self, policy: &Policy) -> Millis {
        let window_end = self
            .window_start
            .map_or(0, |start| start.saturating_add(policy.window_ms));
        window_end.max(self.locked_until.unwrap_or(0))
    }
}

/// Reserves an attempt at the password of `user_id` (counted in the users table).
pub fn reserve_account(
    tx: &Transaction<'_>,
    user_id: &UserId,
    now: Millis,
    policy: &Policy,
) -> rusqlite::Result<Reservation> {
    let mut counter = login_counter(tx, user_id)?;
    let reservation = counter.reserve(now, policy);
    if matches!(reservation, Reservation::Granted { .. }) {
        set_login_counter(tx, user_id, &counter)?;
    }
    Ok(reservation)
}

/// The lockout counter of an account.
pub fn login_counter(conn: &rusqlite::Connection, user_id: &UserId) -> rusqlite::Result<Counter> {
    conn.query_row(
        "SELECT failed_login_count, failed_login_window_start, locked_until FROM users WHERE id = ?1",
        [user_id],
        |r| {
            Ok(Counter {
                count: r.get(0)?,
                window_start: r.get(1)?,
                locked_until: r.get(2)?,
            })
        },
    )
}

pub fn set_login_counter(
    tx: &Transaction<'_>,
    user_id: &UserId,
    counter: &Counter,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE users SET failed_login_count = ?2, failed_login_window_start = ?3, locked_until = ?4 WHERE id = ?1",
        params![user_id, counter.count, counter.window_start, counter.locked_until],
    )?;
    Ok(())
}

/// At most this many unknown emails are tracked; beyond it the counters nearest to
/// expiry are dropped first (about 100 bytes each).
const MAX_SHADOW_COUNTERS: usize = 100_000;

/// The counters of emails without an account, keyed by a keyed digest of the address
/// (typed "emails" are often passwords: they are not kept).
#[derive(Clone, Default)]
pub struct ShadowCounters(Arc<Mutex<HashMap<[u8; 16], Counter>>>);

impl ShadowCounters {
    pub fn reserve(&self, key: [u8; 16], now: Millis, policy: &Policy) -> Reservation {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_SHADOW_COUNTERS && !map.contains_key(&key) {
            map.retain(|_, counter| counter.spent_at(policy) > now);
            if map.len() >= MAX_SHADOW_COUNTERS
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, counter)| counter.spent_at(policy))
                    .map(|(key, _)| *key)
            {
                map.remove(&oldest);
            }
        }
        map.entry(key).or_default().reserve(now, policy)
    }
}

/// The key of an unknown email's counter.
pub fn shadow_key(key: &DerivedKey, email: &str) -> [u8; 16] {
    let mac = key.mac("login counter of an unknown email", email.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&mac[..16]);
    out
}

/// The lockout settings, owned, so they can move into a write job.
#[derive(Debug, Clone, Copy)]
pub struct AccountLockout {
    pub policy: Policy,
    window_secs: u64,
}

fn secs_to_ms(secs: u64) -> Millis {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

impl AccountLockout {
    pub fn of(app: &App) -> AccountLockout {
        let auth = &app.settings.auth;
        AccountLockout {
            policy: Policy {
                max_failures: auth.login_max_failures,
                window_ms: secs_to_ms(auth.login_failure_window_secs),
                lockout_ms: secs_to_ms(auth.login_lockout_secs),
            },
            window_secs: auth.login_failure_window_secs,
        }
    }

    /// `Ok` with when this attempt locks the account (if it does) when the password may
    /// be checked; otherwise the 429 of a locked account, the same whoever asks and
    /// whatever the password.
    pub fn admit(&self, reservation: Reservation, now: Millis) -> ApiResult<Option<Millis>> {
        let until = match reservation {
            Reservation::Granted { locks_until } => return Ok(locks_until),
            Reservation::Locked { until } => until,
        };
        let retry_after_secs = u64::try_from(until.saturating_sub(now).saturating_add(999) / 1000)
            .unwrap_or(1)
            .max(1);
        Err(ApiError::TooManyRequests {
            detail: "too many failed logins for this account; try again later".into(),
            throttle: Throttle {
                retry_after_secs,
                limit: self.policy.max_failures,
                window_secs: self.window_secs,
            },
        })
    }
}

/// The email that tells an account's owner it is locked, with the link that unlocks it;
/// prepared by the attempt whose reservation set the lock, sent if that attempt fails.
pub struct LockNotice {
    user_id: UserId,
    until: Millis,
    email: Email,
}

impl LockNotice {
    pub fn new(app: &App, account: &Credentials, locks_until: Option<Millis>) -> Option<Self> {
        let until = locks_until?;
        let token = unlock_token(app.jwt.derived(), &account.id, until);
        let base_url = &app.settings.server.public_base_url;
        Some(LockNotice {
            user_id: account.id.clone(),
            until,
            email: emails::account_locked(base_url, &account.email, &token),
        })
    }

    /// Queues the email if the lock still holds (an attempt in flight may have succeeded
    /// and lifted it); returns whether it did.
    pub fn send(&self, tx: &Transaction<'_>, now: Millis) -> rusqlite::Result<bool> {
        let counter = login_counter(tx, &self.user_id)?;
        if counter.locked_until != Some(self.until) {
            return Ok(false);
        }
        mail::enqueue(tx, &self.email, now)?;
        Ok(true)
    }
}

/// What the audit log keeps of an email typed at login that has no account: a keyed
/// digest (the same typed value gives the same digest), never the value, which is often
/// a password typed into the wrong field.
pub fn typed_email_digest(key: &DerivedKey, email: &str) -> String {
    hex::encode(&key.mac("audit digest of a typed email", email.as_bytes())[..8])
}

/// The token of an unlock link: it names the account and the lock it lifts, so it works
/// once (lifting the lock changes it) and only until that lock ends.
pub fn unlock_token(key: &DerivedKey, user_id: &UserId, until: Millis) -> String {
    let mac = key.mac("unlock link", format!("{user_id}_{until}").as_bytes());
    format!("{user_id}_{until}_{}", hex::encode(mac))
}

/// The account and lock an unlock token names, if the token is genuine.
pub fn parse_unlock_token(key: &DerivedKey, token: &str) -> Option<(UserId, Millis)> {
    let (named, mac) = token.rsplit_once('_')?;
    let (user_id, until) = named.rsplit_once('_')?;
    let until: Millis = until.parse().ok()?;
    let mac = hex::decode(mac).ok()?;
    key.verify("unlock link", named.as_bytes(), &mac)
        .then(|| (UserId::from(user_id.to_owned()), until))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        max_failures: 3,
        window_ms: 60_000,
        lockout_ms: 600_000,
    };

    #[test]
    fn attempts_are_counted_before_their_outcome_and_lock_at_the_limit() {
        let mut counter = Counter::default();
        let granted = Reservation::Granted { locks_until: None };
        assert_eq!(counter.reserve(0, &POLICY), granted);
        assert_eq!(counter.reserve(1, &POLICY), granted);
        let last = Reservation::Granted {
            locks_until: Some(600_002),
        };
        assert_eq!(counter.reserve(2, &POLICY), last);
        for now in [3, 600_001] {
            let locked = Reservation::Locked { until: 600_002 };
            assert_eq!(counter.reserve(now, &POLICY), locked);
        }
        assert_eq!(counter.reserve(600_002, &POLICY), granted);
        assert_eq!(counter.count, 1);
    }

    #[test]
    fn attempts_outside_the_window_start_a_new_one() {
        let mut counter = Counter::default();
        counter.reserve(0, &POLICY);
        counter.reserve(1, &POLICY);
        counter.reserve(60_002, &POLICY);
        assert_eq!(counter.count, 1);
        assert_eq!(counter.window_start, Some(60_002));
    }

    #[test]
    fn shadow_counters_stay_bounded() {
        let shadow = ShadowCounters::default();
        for i in 0..MAX_SHADOW_COUNTERS + 10 {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            shadow.reserve(key, 0, &POLICY);
        }
        assert_eq!(shadow.0.lock().unwrap().len(), MAX_SHADOW_COUNTERS);
    }

    #[test]
    fn unlock_tokens_name_one_lock_and_cannot_be_forged() {
        let key = DerivedKey::from_secret(&[1; 32]);
        let user = UserId::from("0190-user".to_owned());
        let token = unlock_token(&key, &user, 42);
        assert_eq!(parse_unlock_token(&key, &token), Some((user, 42)));
        let forged = token.replace("_42_", "_43_");
        assert_eq!(parse_unlock_token(&key, &forged), None);
        let other = DerivedKey::from_secret(&[2; 32]);
        assert_eq!(parse_unlock_token(&other, &token), None);
        assert_eq!(parse_unlock_token(&key, "nonsense"), None);
    }
}
