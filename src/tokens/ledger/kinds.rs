//! What the ledger stores as text: the kind of a row, where a lot came from, a hold's state.

crate::stored_enum! {
    /// The kind of a ledger row (`token_transactions.kind`).
    pub enum TransactionKind {
        Grant,
        Spend,
        Hold,
        HoldRelease,
        Expire,
        Clawback,
    }
}

crate::stored_enum! {
    /// Where a lot's tokens came from (`token_lots.source`).
    pub enum Source {
        Subscription,
        Purchase,
        Reward,
        Admin,
        Refund,
    }
}

crate::stored_enum! {
    /// The state of a reservation (`token_holds.status`).
    pub enum HoldStatus {
        Open,
        Captured,
        Released,
        Expired,
    }
}

#[cfg(test)]
mod tests {
    use strum::VariantNames;

    use super::*;

    #[test]
    fn kinds_are_stored_and_listed_as_the_schema_spells_them() {
        assert_eq!(
            TransactionKind::VARIANTS.join(", "),
            "grant, spend, hold, hold_release, expire, clawback"
        );
        assert_eq!(
            HoldStatus::VARIANTS.join(", "),
            "open, captured, released, expired"
        );
        assert_eq!(TransactionKind::HoldRelease.to_string(), "hold_release");
        assert_eq!("refund".parse::<Source>().unwrap(), Source::Refund);
        assert_eq!(
            serde_json::to_string(&HoldStatus::Captured).unwrap(),
            "\"captured\""
        );
    }
}
