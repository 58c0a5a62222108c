//! The field checks the token routes share; each returns the value the handler uses.

use std::str::FromStr;

use serde_json::Value;
use strum::VariantNames;

use crate::http::validate::{json_object, line};
use crate::tokens::ledger::MAX_AMOUNT;

pub use crate::tokens::ops::check_amount as amount;

/// A capture may be 0 (the job produced nothing: everything returns).
pub fn capture(amount: i64) -> Result<i64, String> {
    if (0..=MAX_AMOUNT).contains(&amount) {
        Ok(amount)
    } else {
        Err(format!("must be a whole number from 0 to {MAX_AMOUNT}"))
    }
}

/// One of the configured features (`token_features`).
pub fn feature(known: &[String], feature: &str) -> Result<String, String> {
    if known.iter().any(|f| f == feature) {
        Ok(feature.to_owned())
    } else {
        Err(format!(
            "is not a known feature; use one of: {}",
            known.join(", ")
        ))
    }
}

/// Optional text on one line of at most `max` characters.
pub fn optional_line(value: Option<&str>, max: usize) -> Result<Option<String>, String> {
    value
        .map(|v| line(v, max).map(|()| v.to_owned()))
        .transpose()
}

/// Optional metadata: a JSON object of at most 4 KiB.
pub fn metadata(value: Option<&Value>) -> Result<Option<Value>, String> {
    value
        .map(|v| json_object(v, 4096, "4 KiB").map(|()| v.clone()))
        .transpose()
}

/// One of a stored enum's values, for query parameters such as `status` and `type`;
/// the message lists them all.
pub fn variant<E: FromStr + VariantNames>(value: &str) -> Result<E, String> {
    value
        .parse()
        .map_err(|_| format!("must be one of {}", E::VARIANTS.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::ledger::HoldStatus;

    #[test]
    fn checks_return_what_they_accept() {
        assert_eq!(capture(0), Ok(0));
        assert!(capture(-1).is_err());
        assert_eq!(
            variant::<HoldStatus>("held"),
            Err::<HoldStatus, _>("must be one of open, captured, released, expired".into())
        );
        assert_eq!(
            optional_line(Some("a\nb"), 10),
            Err("must not contain control characters".into())
        );
        assert!(metadata(Some(&serde_json::json!([]))).is_err());
    }
}
