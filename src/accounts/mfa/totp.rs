//! RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30-second steps, one step of clock skew either
//! way) through `totp-rs`, the `otpauth://` URI and QR code authenticator apps scan, and
//! the sealing of secrets at rest (ChaCha20-Poly1305 under a key derived from the server
//! secret, bound to the account id).

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::auth::derived::DerivedKey;
use crate::platform::ids::UserId;

pub const DIGITS: u8 = 6;
pub const STEP_SECS: u64 = 30;
/// Steps accepted on either side of the current one.
pub const SKEW_STEPS: u16 = 1;
/// 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
const NONCE_BYTES: usize = 12;

/// A TOTP shared secret. It never appears in `Debug` output, so never in logs.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    pub fn generate() -> TotpSecret {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    /// The secret as authenticator apps take it typed in: RFC 4648 base32, no padding.
    pub fn base32(&self) -> String {
        Secret::from(self.0.clone()).to_base32()
    }

    fn totp(&self, issuer: Option<&str>, account: &str) -> anyhow::Result<Totp> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(SKEW_STEPS)
            .with_step_duration(STEP_SECS)
            .with_secret(self.0.clone())
            .with_issuer(issuer)
            .with_account_name(account.replace(':', "."))
            .build()
            .map_err(|e| anyhow::anyhow!("TOTP parameters refused: {e}"))
    }

    /// The time step (seconds / 30) whose code `code` is, among the current one and one
    /// either side at `now_secs`; `None` for any other input. Spaces are ignored.
    pub fn matching_step(&self, code: &str, now_secs: u64) -> anyhow::Result<Option<u64>> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        Ok(self.totp(None, "")?.check(&code, now_secs))
    }

    /// The code of the step holding `time_secs` (tests and tools).
    pub fn code_at(&self, time_secs: u64) -> anyhow::Result<String> {
        Ok(self.totp(None, "")?.generate(time_secs).to_string())
    }

    /// `otpauth://totp/<issuer>:<account>?secret=...&issuer=...`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> anyhow::Result<String> {
        self.totp(Some(issuer), account)?
            .to_url()
            .map_err(|e| anyhow::anyhow!("cannot build the otpauth URI: {e}"))
    }
}

/// The QR code of `uri` as a standalone SVG document.
pub fn qr_svg(uri: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::new(uri.as_bytes())?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// The key TOTP secrets are sealed with: derived from the server secret for this use
/// alone (never the signing key itself).
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl SealKey {
    pub fn from_derived(key: &DerivedKey) -> SealKey {
        SealKey(key.mac("mfa: TOTP secret sealing key v1", b""))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// `nonce || ciphertext`, with the account id as associated data (a sealed secret
    /// copied to another account does not open).
    pub fn seal(&self, user_id: &UserId, secret: &TotpSecret) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: &secret.0,
            aad: user_id.as_str().as_bytes(),
        };
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| anyhow::anyhow!("sealing the TOTP secret failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, user_id: &UserId, sealed: &[u8]) -> anyhow::Result<TotpSecret> {
        anyhow::ensure!(sealed.len() > NONCE_BYTES, "sealed TOTP secret too short");
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: ciphertext,
            aad: user_id.as_str().as_bytes(),
        };
        let secret = self
            .cipher()
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| {
                anyhow::anyhow!("the TOTP secret does not open: the server secret changed?")
            })?;
        Ok(TotpSecret(secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret(b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_match_rfc_6238_vectors() {
        // RFC 6238 appendix B (SHA-1), last 6 of the 8 digits.
        let secret = rfc_secret();
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(secret.code_at(time).unwrap(), code);
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let secret = rfc_secret();
        let code = secret.code_at(3000).unwrap(); // step 100
        for (now, expected) in [
            (2969, None),
            (2970, Some(100)),
            (3030, Some(100)),
            (3059, Some(100)),
            (3060, None),
        ] {
            assert_eq!(
                secret.matching_step(&code, now).unwrap(),
                expected,
                "at {now}"
            );
        }
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(secret.matching_step(&spaced, 3000).unwrap(), Some(100));
        for junk in ["", "12345", "1234567", "+12345", "abcdef"] {
            assert_eq!(secret.matching_step(junk, 3000).unwrap(), None);
        }
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_account() {
        let key = SealKey::from_derived(&DerivedKey::from_secret(&[1; 32]));
        let (alice, bob) = (
            UserId::from("alice".to_owned()),
            UserId::from("bob".to_owned()),
        );
        let secret = TotpSecret::generate();
        let sealed = key.seal(&alice, &secret).unwrap();
        assert!(
            !sealed
                .windows(SECRET_BYTES)
                .any(|w| w == secret.0.as_slice())
        );
        assert_eq!(key.open(&alice, &sealed).unwrap().0, secret.0);
        assert!(key.open(&bob, &sealed).is_err());
        let other = SealKey::from_derived(&DerivedKey::from_secret(&[2; 32]));
        assert!(other.open(&alice, &sealed).is_err());
        assert!(key.open(&alice, &sealed[..5]).is_err());
        assert_eq!(format!("{secret:?}"), "TotpSecret(<redacted>)");
    }

    #[test]
    fn the_uri_names_issuer_and_account_and_the_qr_is_svg() {
        let uri = rfc_secret()
            .otpauth_uri("audiostudio", "a@example.com")
            .unwrap();
        assert!(
            uri.starts_with("otpauth://totp/audiostudio:a%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=audiostudio"), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
    }
}
