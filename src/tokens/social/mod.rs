//! Social engagement rewards: users claim tokens for following, sharing or posting; a task
//! either pays at once or waits for an admin's review.

pub mod claims;
pub mod store;

use serde::Serialize;
use utoipa::ToSchema;

use crate::http::pagination::Cursor;
use crate::platform::clock::Millis;
use crate::platform::ids::{ClaimId, UserId};

/// The longest task or claim id accepted.
pub const MAX_ID: usize = 128;

crate::stored_enum! {
    /// Where a claim stands (`social_engagements.status`).
    pub enum ClaimStatus {
        Pending,
        Approved,
        Rejected,
    }
}

/// A task as one user sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: String,
    pub platform: String,
    pub action: String,
    pub title: String,
    pub description: Option<String>,
    pub reward_tokens: i64,
    /// Approved (and paid) at once when claimed; otherwise an admin reviews the claim.
    pub auto_approve: bool,
    /// The reward tokens expire this many days after they are granted; absent: never.
    pub reward_expires_days: Option<i64>,
    /// `available`, `pending`, `approved` or `rejected`, for the caller (of their newest
    /// claim); after `rejected` the task may be claimed again (3 claims per task in all).
    pub state: String,
    /// The caller's claim on this task, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub claim_id: Option<ClaimId>,
}

/// A claim as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimView {
    #[schema(value_type = String)]
    pub id: ClaimId,
    pub task_id: Option<String>,
    /// `pending`, `approved` or `rejected`.
    #[schema(value_type = String)]
    pub status: ClaimStatus,
    pub reward_tokens: i64,
    pub proof_url: Option<String>,
    /// The account handle on the platform, without a leading `@`.
    pub handle: Option<String>,
    pub created_at: String,
    pub reviewed_at: Option<String>,
}

/// A claim as an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminClaimView {
    #[serde(flatten)]
    pub claim: ClaimView,
    #[schema(value_type = String)]
    pub user_id: UserId,
    pub email: String,
    pub platform: String,
    pub action: String,
    /// The task's title, while the task exists.
    pub task_title: Option<String>,
    /// The admin who approved or rejected it; absent when pending or auto-approved.
    pub reviewed_by: Option<String>,
    #[serde(skip)]
    created_ms: Millis,
}

impl AdminClaimView {
    /// Where the review queue continues after this claim.
    pub fn cursor(&self) -> ClaimCursor {
        ClaimCursor {
            created_ms: self.created_ms,
            id: self.claim.id.clone(),
        }
    }
}

/// A place in the review queue (newest first): `<created_at ms>_<claim id>` of the last
/// claim of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimCursor {
    pub created_ms: Millis,
    pub id: ClaimId,
}

impl Cursor for ClaimCursor {
    fn parse(text: &str) -> Option<ClaimCursor> {
        let (at, id) = text.split_once('_')?;
        let at = at.parse::<Millis>().ok().filter(|t| *t >= 0)?;
        (!id.is_empty() && id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_graphic())).then(
            || ClaimCursor {
                created_ms: at,
                id: ClaimId::from(id),
            },
        )
    }

    fn render(&self) -> String {
        format!("{}_{}", self.created_ms, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(
            ClaimCursor::parse("1700000000000_0190-ab"),
            Some(ClaimCursor {
                created_ms: 1_700_000_000_000,
                id: ClaimId::from("0190-ab")
            })
        );
        for bad in ["", "_", "12_", "x_abc", "-5_abc", "12"] {
            assert!(ClaimCursor::parse(bad).is_none(), "{bad}");
        }
        let cursor = ClaimCursor::parse("12_ab").unwrap();
        assert_eq!(cursor.render(), "12_ab");
    }
}
