//! Billing's stored statuses: a subscription's (Stripe's own list) and a Checkout Session's.

crate::stored_enum! {
    /// A subscription's status as Stripe names it, stored in `user_subscriptions.status`.
    #[derive(Default, strum::EnumIter)]
    pub enum SubscriptionStatus {
        /// The first payment has not succeeded yet (also what a missing status reads as).
        #[default]
        Incomplete,
        /// The first payment never succeeded: the subscription never started.
        IncompleteExpired,
        Trialing,
        Active,
        PastDue,
        Canceled,
        Unpaid,
        Paused,
    }
}

impl SubscriptionStatus {
    /// Still running (gives access and can be changed): not ended, and not a first
    /// payment that never succeeded.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            Self::Active | Self::Trialing | Self::PastDue | Self::Unpaid | Self::Paused
        )
    }

    /// In good standing: renewals are paid, so the next grant is coming.
    pub fn is_in_good_standing(self) -> bool {
        matches!(self, Self::Active | Self::Trialing)
    }

    /// The first payment has not succeeded (yet, or ever): the subscription never started.
    pub fn never_started(self) -> bool {
        matches!(self, Self::Incomplete | Self::IncompleteExpired)
    }

    /// Every live status, for SQL `IN (...)` lists.
    pub fn live() -> impl Iterator<Item = SubscriptionStatus> {
        <Self as strum::IntoEnumIterator>::iter().filter(|s| s.is_live())
    }
}

crate::stored_enum! {
    /// A Checkout Session's status, stored in `billing_checkout_sessions.status`.
    #[derive(Default)]
    pub enum CheckoutStatus {
        /// Waiting for the customer (also what a missing or unknown status reads as).
        #[default]
        Open,
        Complete,
        Expired,
    }
}

impl CheckoutStatus {
    /// The status Stripe sent, `open` when it sent none or one we do not know.
    pub fn from_stripe(status: Option<&str>) -> CheckoutStatus {
        status.and_then(|s| s.parse().ok()).unwrap_or_default()
    }
}

crate::stored_enum! {
    /// One entry of a subscription's story (`subscription_changes.kind`).
    pub enum ChangeKind {
        CheckoutStarted,
        Started,
        Renewed,
        PlanChanged,
        CancelScheduled,
        Resumed,
        Canceled,
        StatusChanged,
    }
}

impl ChangeKind {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_statuses_are_the_running_ones() {
        let live: Vec<&str> = SubscriptionStatus::live()
            .map(SubscriptionStatus::as_str)
            .collect();
        assert_eq!(live, ["trialing", "active", "past_due", "unpaid", "paused"]);
        assert!(!SubscriptionStatus::Incomplete.is_live());
        assert!(!SubscriptionStatus::Canceled.is_live());
        assert_eq!("past_due".parse(), Ok(SubscriptionStatus::PastDue));
        assert!(SubscriptionStatus::Trialing.is_in_good_standing());
        assert!(!SubscriptionStatus::PastDue.is_in_good_standing());
    }

    #[test]
    fn unknown_checkout_statuses_read_as_open() {
        assert_eq!(
            CheckoutStatus::from_stripe(Some("complete")),
            CheckoutStatus::Complete
        );
        assert_eq!(
            CheckoutStatus::from_stripe(Some("weird")),
            CheckoutStatus::Open
        );
        assert_eq!(CheckoutStatus::from_stripe(None), CheckoutStatus::Open);
    }
}
