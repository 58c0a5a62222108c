//! The status of a stored webhook event (`webhook_events.status`).

crate::stored_enum! {
    /// Where a stored event is in its processing.
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
}

impl EventStatus {
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
