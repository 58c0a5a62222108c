//! The life of a claim: recorded (and paid at once for an auto-approved task) by an account
//! with a verified email within the daily caps (per account and per client address), then
//! approved (paid once) or rejected by an admin; each step audited.

use rusqlite::Transaction;
use serde_json::json;

use super::store::{self, NewClaim, Task};
use super::{AdminClaimView, ClaimStatus, ClaimView};
use crate::accounts::ops as accounts;
use crate::http::error::{ApiError, ApiResult, Throttle};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::ids::{ClaimId, UserId};
use crate::tokens::ledger::{self, Grant, Granted, Source};

const DAY_MS: Millis = 86_400_000;

/// Most claims one user makes on one task: a rejected claim may be followed by a new one
/// (a fixed link, the right handle), but the review queue is not a place to retry forever.
pub const MAX_CLAIMS_PER_TASK: i64 = 3;

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// What a claim must pass besides the task's own rules (the `social_*` settings).
#[derive(Debug, Clone, Copy)]
pub struct RewardRules {
    /// Only accounts whose email is verified may claim.
    pub require_verified_email: bool,
    /// Most reward tokens one account may claim per UTC day.
    pub daily_cap: i64,
    /// Most reward tokens claimed per UTC day from one client address, all accounts together.
    pub daily_cap_per_ip: i64,
}

/// Records a claim (one per task and user besides rejected ones, at most
/// [`MAX_CLAIMS_PER_TASK`] in all; one account per handle and task) of an account
/// the rules allow, enforces the daily caps, and pays an auto-approved task at once; all in
/// the caller's transaction.
pub fn create_claim(
    tx: &Transaction<'_>,
    claim: &NewClaim<'_>,
    rules: &RewardRules,
    actor: &Actor,
    now: Millis,
) -> ApiResult<ClaimView> {
    if rules.require_verified_email {
        require_verified_email(tx, claim.user_id)?;
    }
    let task = store::active_task(tx, claim.task_id)?.ok_or(ApiError::NotFound)?;
    if store::claims_made(tx, claim, &task)? >= MAX_CLAIMS_PER_TASK
        && !store::has_claimed(tx, claim, &task)?
    {
        return Err(ApiError::Conflict(format!(
            "your claims on this task were rejected {MAX_CLAIMS_PER_TASK} times; it cannot be claimed again"
        )));
    }
    let id = ClaimId::from(uuid::Uuid::now_v7().to_string());
    let status = if task.auto_approve {
        ClaimStatus::Approved
    } else {
        ClaimStatus::Pending
    };
    match store::insert_claim(tx, &id, claim, &task, status, now) {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(claim_conflict(tx, claim, &task)?),
        Err(e) => return Err(e.into()),
    }
    check_daily_caps(tx, claim, rules, now)?;
    if task.auto_approve {
        let lot = grant_reward(
            tx,
            claim.user_id,
            &id,
            task.reward_tokens,
            task.reward_expires_days,
            &task.title,
            now,
        )?;
        let event = Event::new("tokens.social_auto_approved")
            .target("social_claim", &id)
            .details(json!({
                "user_id": claim.user_id,
                "task_id": claim.task_id,
                "amount": task.reward_tokens,
                "lot": lot,
            }));
        audit::record(tx, now, actor, event)?;
    }
    let view = store::find_claim(tx, &id)?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the claim just written is missing")))?;
    Ok(view.claim)
}

/// Which uniqueness rule a refused insert broke, as a 409.
fn claim_conflict(tx: &Transaction<'_>, claim: &NewClaim<'_>, task: &Task) -> ApiResult<ApiError> {
    Ok(ApiError::Conflict(
        if store::has_claimed(tx, claim, task)? {
            "you have already claimed this task".into()
        } else {
            "this handle was already used for this task by another account".into()
        },
    ))
}

/// An account that has not verified its email is refused (farming needs no inbox otherwise).
fn require_verified_email(tx: &Transaction<'_>, user_id: &UserId) -> ApiResult<()> {
    if accounts::find_user(tx, user_id)?.is_some_and(|u| u.email_verified) {
        return Ok(());
    }
    Err(ApiError::EmailNotVerified(
        "verify your email address before claiming social rewards: follow the link we emailed you, or ask for a new one with POST /api/auth/resend-verification",
    ))
}

/// The pending and approved rewards claimed today (UTC), this claim included, must fit
/// the caller's cap and the cap of the client address (all accounts together).
fn check_daily_caps(
    tx: &Transaction<'_>,
    claim: &NewClaim<'_>,
    rules: &RewardRules,
    now: Millis,
) -> ApiResult<()> {
    let day_start = now.div_euclid(DAY_MS) * DAY_MS;
    let (from, to) = (day_start, day_start + DAY_MS);
    let claimed = store::rewards_claimed(tx, store::Claimant::User(claim.user_id), from, to)?;
    if claimed > rules.daily_cap {
        let cap = rules.daily_cap;
        return Err(over_cap(
            cap,
            day_start,
            now,
            format!(
                "this claim would take today's social rewards to {claimed} tokens, over the daily cap of {cap}; try again after midnight UTC"
            ),
        ));
    }
    let claimed = store::rewards_claimed(tx, store::Claimant::Address(claim.client_ip), from, to)?;
    if claimed > rules.daily_cap_per_ip {
        let cap = rules.daily_cap_per_ip;
        return Err(over_cap(
            cap,
            day_start,
            now,
            format!(
                "this claim would take today's social rewards claimed from your network address to {claimed} tokens, over the daily cap of {cap} per address; try again after midnight UTC"
            ),
        ));
    }
    Ok(())
}

/// The 429 of a daily cap, retried after the next UTC midnight.
fn over_cap(cap: i64, day_start: Millis, now: Millis, detail: String) -> ApiError {
    let retry_after_ms = day_start + DAY_MS - now;
    ApiError::TooManyRequests {
        detail,
        throttle: Throttle {
            retry_after_secs: u64::try_from((retry_after_ms + 999) / 1000).unwrap_or(1),
            limit: u32::try_from(cap).unwrap_or(u32::MAX),
            window_secs: 86_400,
        },
    }
}

/// Mints the claim's reward lot; the claim id is the lot's reference, so it pays once.
fn grant_reward(
    tx: &Transaction<'_>,
    user_id: &UserId,
    claim_id: &ClaimId,
    amount: i64,
    expires_days: Option<i64>,
    title: &str,
    now: Millis,
) -> ApiResult<Option<i64>> {
    if amount <= 0 {
        return Ok(None);
    }
    let expires_at = expires_days.map(|days| now.saturating_add(days.saturating_mul(DAY_MS)));
    let description = format!("social reward: {title}");
    let granted = ledger::grant(
        tx,
        &Grant {
            user_id,
            source: Source::Reward,
            source_ref: claim_id,
            amount,
            expires_at,
            description: Some(&description),
        },
        now,
    )?;
    match granted {
        Granted::New { lot_id, .. } => Ok(Some(lot_id)),
        Granted::AlreadyGranted { .. } => Err(ApiError::Conflict(
            "this claim's reward was already granted".into(),
        )),
    }
}

/// An admin's verdict on a pending claim.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    fn status(self) -> ClaimStatus {
        match self {
            Decision::Approve => ClaimStatus::Approved,
            Decision::Reject => ClaimStatus::Rejected,
        }
    }
}

/// Approves (granting the reward once) or rejects a pending claim, audited.
pub fn review(
    tx: &Transaction<'_>,
    id: &ClaimId,
    decision: Decision,
    admin_id: &UserId,
    actor: &Actor,
    now: Millis,
) -> ApiResult<AdminClaimView> {
    let claim = store::claim_for_review(tx, id)?.ok_or(ApiError::NotFound)?;
    if claim.status != ClaimStatus::Pending {
        return Err(ApiError::Conflict(format!(
            "the claim is already {}; only pending claims can be reviewed",
            claim.status
        )));
    }
    store::set_reviewed(tx, id, decision.status(), admin_id, now)?;
    let user_id = &claim.user_id;
    let event = match decision {
        Decision::Approve => {
            let lot = grant_reward(
                tx,
                user_id,
                id,
                claim.reward,
                claim.expires_days,
                &claim.title,
                now,
            )?;
            Event::new("tokens.social_approved")
                .details(json!({ "user_id": user_id, "amount": claim.reward, "lot": lot }))
        }
        Decision::Reject => Event::new("tokens.social_rejected")
            .details(json!({ "user_id": user_id, "amount": claim.reward })),
    };
    audit::record(tx, now, actor, event.target("social_claim", id))?;
    store::find_claim(tx, id)?.ok_or(ApiError::NotFound)
}
