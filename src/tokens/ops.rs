//! What operators do with tokens, for the CLI and the admin API: grant, read a balance,
//! check the ledger, seed the catalogue and demo histories. No clap, no Rocket.

pub mod admin;

use rusqlite::{Connection, Transaction};
use serde_json::json;

use super::ledger::{
    self, BalanceView, Debit, Grant, Granted, LedgerError, MAX_AMOUNT, Mismatch, Source,
    TransactionView,
};
use super::social::store::{self as social_store, NewTask};
use super::store::{self, NewPack};
use crate::accounts::ops as accounts;
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::UserId;

/// An amount a client or operator may move: a whole number from 1 to `MAX_AMOUNT`.
pub fn check_amount(amount: i64) -> Result<i64, String> {
    if (1..=MAX_AMOUNT).contains(&amount) {
        Ok(amount)
    } else {
        Err(format!("must be a whole number from 1 to {MAX_AMOUNT}"))
    }
}

/// Who receives an operator's grant.
#[derive(Debug, Clone)]
pub enum Recipient {
    Id(UserId),
    /// An address as given; compared in its canonical form.
    Email(String),
}

/// The id of the recipient's account: any account by id, an active one by email.
pub fn find_recipient(
    conn: &Connection,
    recipient: &Recipient,
) -> rusqlite::Result<Option<UserId>> {
    Ok(match recipient {
        Recipient::Id(id) => accounts::find_user(conn, id)?.map(|_| id.clone()),
        Recipient::Email(email) => accounts::find_active_by_email(conn, email)?,
    })
}

/// An operator's grant (API or CLI): a fresh `admin` lot, audited in the same transaction.
pub fn grant_by_admin(
    tx: &Transaction<'_>,
    user_id: &UserId,
    amount: i64,
    reason: &str,
    expires_at: Option<Millis>,
    actor: &Actor,
    now: Millis,
) -> Result<(i64, TransactionView), LedgerError> {
    let source_ref = uuid::Uuid::now_v7().to_string();
    let granted = ledger::grant(
        tx,
        &Grant {
            user_id,
            source: Source::Admin,
            source_ref: &source_ref,
            amount,
            expires_at,
            description: Some(reason),
        },
        now,
    )?;
    let Granted::New {
        lot_id,
        transaction,
    } = granted
    else {
        return Err(LedgerError::Corrupt(
            "a fresh lot reference collided".into(),
        ));
    };
    let lot = lot_id.to_string();
    let event = Event::new("tokens.admin_grant")
        .target("user", user_id)
        .details(json!({ "amount": amount, "reason": reason, "lot": lot, "expires_at": expires_at.map(rfc3339) }));
    audit::record(tx, now, actor, event)?;
    Ok((lot_id, *transaction))
}

/// The balance of the active account with this email, if there is one.
pub fn balance_by_email(
    conn: &Connection,
    email: &str,
    now: Millis,
) -> rusqlite::Result<Option<BalanceView>> {
    let Some(user_id) = find_recipient(conn, &Recipient::Email(email.to_owned()))? else {
        return Ok(None);
    };
    ledger::balance(conn, &user_id, now).map(Some)
}

/// Verifies the money invariants for every user: how many users, and those out of step.
pub fn check(conn: &Connection) -> rusqlite::Result<(u64, Vec<Mismatch>)> {
    ledger::check(conn)
}

/// [`check`] as the backup verification wants it: a summary, or what is wrong (user ids
/// only: a backup's report may be shown to an admin or logged).
pub fn ledger_verdict(conn: &Connection) -> Result<String, String> {
    let (users, mismatches) = check(conn).map_err(|e| format!("cannot run it: {e}"))?;
    if mismatches.is_empty() {
        return Ok(format!("ledger consistent for {users} users"));
    }
    let ids: Vec<String> = mismatches
        .iter()
        .take(5)
        .map(|m| m.user_id.to_string())
        .collect();
    Err(format!(
        "{} of {users} users inconsistent (first: {})",
        mismatches.len(),
        ids.join(", ")
    ))
}

const PACKS: [NewPack; 3] = [
    NewPack {
        id: "pack_small",
        name: "500 tokens",
        tokens: 500,
        price_cents: 500,
    },
    NewPack {
        id: "pack_medium",
        name: "2,000 tokens",
        tokens: 2000,
        price_cents: 1800,
    },
    NewPack {
        id: "pack_large",
        name: "10,000 tokens",
        tokens: 10000,
        price_cents: 8000,
    },
];

/// Every seeded task waits for an admin's review: a claim carries only a link, which no one
/// has checked. (Tasks already in a database keep their setting; see the README.)
const SOCIAL_TASKS: [NewTask; 4] = [
    NewTask {
        id: "task_x_follow",
        platform: "x",
        action: "follow",
        title: "Follow audiostudio on X",
        reward: 50,
        auto_approve: false,
        reward_expires_days: Some(90),
    },
    NewTask {
        id: "task_youtube_subscribe",
        platform: "youtube",
        action: "subscribe",
        title: "Subscribe on YouTube",
        reward: 50,
        auto_approve: false,
        reward_expires_days: Some(90),
    },
    NewTask {
        id: "task_instagram_share",
        platform: "instagram",
        action: "share",
        title: "Share a track you made on Instagram",
        reward: 150,
        auto_approve: false,
        reward_expires_days: None,
    },
    NewTask {
        id: "task_tiktok_video",
        platform: "tiktok",
        action: "video",
        title: "Post a TikTok made with audiostudio",
        reward: 300,
        auto_approve: false,
        reward_expires_days: None,
    },
];

/// Adds the token packs and social tasks of the catalogue that are missing; existing
/// rows are kept. Returns how many rows were added.
pub fn seed_catalogue(tx: &Transaction<'_>, now: Millis) -> rusqlite::Result<usize> {
    let mut added = 0;
    for (i, pack) in (0i64..).zip(PACKS.iter()) {
        added += store::insert_pack(tx, pack, i, now)?;
    }
    for (i, task) in (0i64..).zip(SOCIAL_TASKS.iter()) {
        added += social_store::insert_task(tx, task, i, now)?;
    }
    Ok(added)
}

/// Gives demo user number `i` a history: an audited grant of 1,000 tokens and one to
/// three spends.
pub fn seed_demo_history(
    tx: &Transaction<'_>,
    user_id: &UserId,
    i: u32,
    now: Millis,
) -> Result<(), LedgerError> {
    let grant = Grant {
        user_id,
        source: Source::Admin,
        source_ref: &format!("seed-demo-{i}"),
        amount: 1000,
        expires_at: None,
        description: Some("demo allowance"),
    };
    ledger::grant(tx, &grant, now)?;
    let event = Event::new("tokens.admin_grant")
        .target("user", user_id)
        .details(json!({ "amount": grant.amount, "reason": "demo allowance", "via": "seed" }));
    audit::record(tx, now, &Actor::cli(), event)?;
    let features = ["text_to_speech", "music_generation", "transcription"];
    for (n, feature) in features
        .iter()
        .enumerate()
        .take(1 + (i as usize % features.len()))
    {
        let debit = Debit {
            user_id,
            amount: 10 * (n as i64 + 1),
            feature,
            description: Some("demo job"),
            metadata: None,
        };
        ledger::debit(tx, &debit, now)?;
        store::record_usage(tx, user_id, feature, debit.amount, now)?;
    }
    Ok(())
}
