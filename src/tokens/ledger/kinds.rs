//! What the ledger stores as text: the kind of a row, where a lot came from, a hold's state.

use serde::{Deserialize, Serialize};

use crate::text_enum_sql;

/// The kind of a ledger row (`token_transactions.kind`).
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
pub enum TransactionKind {
    Grant,
    Spend,
    Hold,
    HoldRelease,
    Expire,
    Clawback,
}

text_enum_sql!(TransactionKind);

/// Where a lot's tokens came from (`token_lots.source`).
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
pub enum Source {
    Subscription,
    Purchase,
    Reward,
    Admin,
    Refund,
}

text_enum_sql!(Source);

impl Source {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The state of a reservation (`token_holds.status`).
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
pub enum HoldStatus {
    Open,
    Captured,
    Released,
    Expired,
}

text_enum_sql!(HoldStatus);

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
