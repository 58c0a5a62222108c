//! Opaque secret tokens (refresh, reset, verification, console sessions): 256 random
//! bits shown once, stored only as their SHA-256.

use base64::Engine as _;
use rand::RngCore;
use sha2::Digest;

/// A random token of 256 bits, URL-safe base64, and the hash under which it is stored.
pub fn new_opaque_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// The stored form of a token: its SHA-256 in hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}
