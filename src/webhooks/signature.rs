//! Proves a delivery came from Stripe: HMAC-SHA256 of `"{t}.{raw body}"`, any `v1` against any configured secret, in constant time, within a tolerance.
//!
//! The header looks like `t=1700000000,v1=<hex>,v1=<hex>,v0=<hex>`: Stripe sends several
//! `v1` values while an endpoint secret is being rolled, and schemes other than `v1`
//! (such as the old `v0`) are ignored, so a header carrying only those is refused.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was refused; the message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header needs exactly one timestamp t=<unix seconds>")]
    NoTimestamp,
    #[error("the Stripe-Signature header has no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches the body with any configured webhook secret")]
    Mismatch,
    #[error(
        "the signature timestamp is {} s {}; at most {tolerance} s is accepted",
        age.unsigned_abs(),
        if *age >= 0 { "old" } else { "in the future" }
    )]
    OutsideTolerance {
        /// Seconds between the timestamp and now: positive when stale, negative when ahead.
        age: i64,
        tolerance: u64,
    },
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    /// Every `v1` value that is well-formed hex of the right length; others can never match.
    pub v1: Vec<[u8; 32]>,
}

/// Reads `t=...,v1=...`: items are `key=value` separated by commas, unknown keys ignored.
pub fn parse(header: &str) -> Result<SignatureHeader, SignatureError> {
    let mut timestamp = None;
    let mut timestamps = 0;
    let mut v1 = Vec::new();
    let mut saw_v1 = false;
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" => {
                timestamps += 1;
                let value = value.trim();
                if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                    timestamp = value.parse::<i64>().ok();
                }
            }
            "v1" => {
                saw_v1 = true;
                let mut mac = [0u8; 32];
                if hex::decode_to_slice(value.trim(), &mut mac).is_ok() {
                    v1.push(mac);
                }
            }
            _ => {}
        }
    }
    let timestamp = match (timestamps, timestamp) {
        (1, Some(t)) => t,
        _ => return Err(SignatureError::NoTimestamp),
    };
    if !saw_v1 {
        return Err(SignatureError::NoSignature);
    }
    Ok(SignatureHeader { timestamp, v1 })
}

/// The configured secrets: `STRIPE_WEBHOOK_SECRET` is a comma-separated list, so the old
/// and the new endpoint secret both verify while one is being rolled.
pub fn secrets(configured: &str) -> Vec<&str> {
    configured
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The hex `v1` signature Stripe computes for `body` at `timestamp` with `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body))
}

/// A whole `Stripe-Signature` header as Stripe would send it (for tests and examples).
pub fn header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// Checks `header` against the raw `body`: some `v1` must equal the HMAC under some
/// secret (compared in constant time), and the timestamp must be within `tolerance_secs`
/// of `now_secs` in either direction. Returns the signed timestamp.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    now_secs: i64,
    tolerance_secs: u64,
) -> Result<i64, SignatureError> {
    let header = header
        .filter(|h| !h.trim().is_empty())
        .ok_or(SignatureError::Missing)?;
    let parsed = parse(header)?;
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = mac(secret, parsed.timestamp, body);
        for candidate in &parsed.v1 {
            matched |= expected.ct_eq(candidate);
        }
    }
    if !bool::from(matched) {
        return Err(SignatureError::Mismatch);
    }
    let age = now_secs.saturating_sub(parsed.timestamp);
    if age.unsigned_abs() > tolerance_secs {
        return Err(SignatureError::OutsideTolerance {
            age,
            tolerance: tolerance_secs,
        });
    }
    Ok(parsed.timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DESIGN §4: the cross-check vector from Stripe's own libraries.
    const VECTOR: &str = "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925";
    const T: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;

    #[test]
    fn the_design_vector() {
        assert_eq!(sign("whsec_test", T, BODY), VECTOR);
        let header = format!("t={T},v1={VECTOR}");
        assert_eq!(verify(Some(&header), BODY, &["whsec_test"], T, 300), Ok(T));
    }

    #[test]
    fn a_tampered_body_or_another_secret_does_not_verify() {
        let header = format!("t={T},v1={VECTOR}");
        assert_eq!(
            verify(Some(&header), br#"{"id":"evt_2"}"#, &["whsec_test"], T, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), BODY, &["whsec_other"], T, 300),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is part of what is signed.
        let moved = format!("t={},v1={VECTOR}", T + 1);
        assert_eq!(
            verify(Some(&moved), BODY, &["whsec_test"], T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_secret_may_match_any_v1() {
        let header = format!(
            "t={T},v1={},v1={VECTOR},v0={}",
            "ab".repeat(32),
            sign("whsec_test", T, BODY)
        );
        assert!(verify(Some(&header), BODY, &["whsec_new", "whsec_test"], T, 300).is_ok());
        assert!(verify(Some(&header), BODY, &["whsec_test", "whsec_new"], T, 300).is_ok());
        assert_eq!(
            verify(Some(&header), BODY, &["whsec_new"], T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let header = format!("t={T},v1={VECTOR}");
        assert!(verify(Some(&header), BODY, &["whsec_test"], T + 300, 300).is_ok());
        assert!(verify(Some(&header), BODY, &["whsec_test"], T - 300, 300).is_ok());
        let stale = verify(Some(&header), BODY, &["whsec_test"], T + 301, 300);
        assert_eq!(
            stale,
            Err(SignatureError::OutsideTolerance {
                age: 301,
                tolerance: 300
            })
        );
        assert!(stale.unwrap_err().to_string().contains("301 s old"));
        let future = verify(Some(&header), BODY, &["whsec_test"], T - 301, 300).unwrap_err();
        assert!(future.to_string().contains("in the future"), "{future}");
    }

    #[test]
    fn malformed_headers() {
        let check = |h: &str| verify(Some(h), BODY, &["whsec_test"], T, 300);
        assert_eq!(
            verify(None, BODY, &["whsec_test"], T, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(check(" "), Err(SignatureError::Missing));
        assert_eq!(
            check(&format!("v1={VECTOR}")),
            Err(SignatureError::NoTimestamp)
        );
        assert_eq!(
            check(&format!("t=abc,v1={VECTOR}")),
            Err(SignatureError::NoTimestamp)
        );
        assert_eq!(
            check(&format!("t=-1700000000,v1={VECTOR}")),
            Err(SignatureError::NoTimestamp)
        );
        assert_eq!(
            check(&format!("t={T},t={T},v1={VECTOR}")),
            Err(SignatureError::NoTimestamp)
        );
        assert_eq!(
            check("t=99999999999999999999999,v1=00"),
            Err(SignatureError::NoTimestamp)
        );
        // Only an unknown scheme, even with the right value: refused.
        assert_eq!(
            check(&format!("t={T},v0={VECTOR}")),
            Err(SignatureError::NoSignature)
        );
        assert_eq!(
            check(&format!("t={T},v1=zz")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&format!("t={T},v1={}", &VECTOR[..62])),
            Err(SignatureError::Mismatch)
        );
        // Spaces around items and garbage items are tolerated.
        assert!(check(&format!(" t={T} , junk, v1={VECTOR} ")).is_ok());
    }

    #[test]
    fn secrets_are_a_comma_separated_list() {
        assert_eq!(secrets("whsec_a, whsec_b,,"), vec!["whsec_a", "whsec_b"]);
        assert!(secrets(" , ").is_empty());
    }
}
