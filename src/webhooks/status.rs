//! The status of a stored webhook event (`webhook_events.status`).

use serde::{Deserialize, Serialize};

use crate::text_enum_sql;

/// Where a stored event is in its processing.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum EventStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// Claimed by a worker, leased.
    Processing,
    Processed,
    /// Nothing to do (another mode, or a type the handler does not act on).
    Ignored,
    /// Gave up: every attempt failed, or the error was permanent.
    Failed,
}

text_enum_sql!(EventStatus);

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether an operator may put it back to `pending`.
    pub fn is_requeueable(self) -> bool {
        matches!(self, EventStatus::Failed | EventStatus::Ignored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantNames;

    #[test]
    fn every_status_has_its_stored_name() {
        assert_eq!(
            EventStatus::VARIANTS,
            ["pending", "processing", "processed", "ignored", "failed"]
        );
        assert!(EventStatus::Ignored.is_requeueable());
        assert!(!EventStatus::Processed.is_requeueable());
    }
}
