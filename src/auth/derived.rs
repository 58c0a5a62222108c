//! A key derived from the signing secret for keyed digests that must not be computable
//! without it: refresh-token successors, unlock links, digests of typed emails.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 under a key of its own (never the signing key itself), one `purpose` per use.
pub struct DerivedKey([u8; 32]);

impl DerivedKey {
    pub fn from_secret(secret: &[u8]) -> DerivedKey {
        DerivedKey(hmac(secret, "audiostudio derived key v1", b""))
    }

    /// The MAC of `input` for `purpose`.
    pub fn mac(&self, purpose: &str, input: &[u8]) -> [u8; 32] {
        hmac(&self.0, purpose, input)
    }

    /// Whether `tag` is the MAC of `input` for `purpose`, compared in constant time.
    pub fn verify(&self, purpose: &str, input: &[u8], tag: &[u8]) -> bool {
        bool::from(self.mac(purpose, input).ct_eq(tag))
    }
}

fn hmac(key: &[u8], purpose: &str, input: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(input);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_depend_on_key_purpose_and_input() {
        let key = DerivedKey::from_secret(&[7; 32]);
        let tag = key.mac("a", b"x");
        assert!(key.verify("a", b"x", &tag));
        assert!(!key.verify("b", b"x", &tag));
        assert!(!key.verify("a", b"y", &tag));
        assert!(!DerivedKey::from_secret(&[8; 32]).verify("a", b"x", &tag));
        assert!(!key.verify("a", b"x", &tag[..16]));
    }
}
