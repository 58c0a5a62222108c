//! Recovery codes: 10 per enrolment, each `xxxxx-xxxxx` from 31 unambiguous characters
//! (49 bits), shown once and stored as keyed digests; each works once.

use rand::Rng;

use crate::auth::derived::DerivedKey;

pub const COUNT: usize = 10;
/// Lowercase letters and digits without 0/o, 1/l/i: read off paper without doubt.
const ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";
const HALF: usize = 5;

/// `COUNT` new codes as shown to the user.
pub fn generate() -> Vec<String> {
    let mut rng = rand::rng();
    let mut char_at = || char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]);
    (0..COUNT)
        .map(|_| {
            let first: String = (0..HALF).map(|_| char_at()).collect();
            let second: String = (0..HALF).map(|_| char_at()).collect();
            format!("{first}-{second}")
        })
        .collect()
}

/// A code as typed: case, spaces and dashes do not matter.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The stored form of a code (keyed: a copy of the database alone does not give codes).
pub fn digest(key: &DerivedKey, code: &str) -> String {
    hex::encode(key.mac("mfa: recovery code", normalize(code).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_well_formed_and_typed_loosely() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), COUNT);
        for code in &codes {
            assert_eq!(code.len(), 2 * HALF + 1, "{code}");
            assert_eq!(code.as_bytes()[HALF], b'-');
        }
        let key = DerivedKey::from_secret(&[3; 32]);
        let code = &codes[0];
        let loose = format!(" {} ", code.to_uppercase().replace('-', " "));
        assert_eq!(digest(&key, code), digest(&key, &loose));
        assert_ne!(digest(&key, code), digest(&key, &codes[1]));
    }
}
