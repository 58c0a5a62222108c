//! Validation of account input: each validator returns the value the handler uses (or the
//! message of its 422 field entry), built on the generic checks of `http::validate`.

use secrecy::SecretString;
use serde_json::Value;

use crate::http::validate::{http_url, json_object, text};

pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_DISPLAY_NAME: usize = 100;
pub const MAX_BIO: usize = 1000;
pub const MAX_AVATAR_URL: usize = 2048;
pub const MAX_PREFERENCES_BYTES: usize = 16 * 1024;

/// The canonical form of an email address: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A valid email address, in its canonical form.
pub fn email(email: &str) -> Result<String, String> {
    let email = email.trim();
    if email.is_empty() {
        return Err("is required".into());
    }
    if !email.is_ascii() {
        return Err("must contain only ASCII characters".into());
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(format!("must be at most {MAX_EMAIL_LEN} characters"));
    }
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.len() <= 64
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
                && email.chars().all(|c| !c.is_whitespace() && !c.is_control())
                && !email.contains(['<', '>', '"', ',', ';', '(', ')', '[', ']', '\\'])
        }
        None => false,
    };
    if valid {
        Ok(normalize_email(email))
    } else {
        Err("is not a valid email address".into())
    }
}

/// A one-line display name, trimmed.
pub fn display_name(name: &str) -> Result<String, String> {
    if name.trim().is_empty() {
        return Err("must not be blank".into());
    }
    if name.contains('\n') {
        return Err("must be a single line".into());
    }
    text(name, MAX_DISPLAY_NAME)?;
    Ok(name.trim().to_owned())
}

pub fn bio(bio: &str) -> Result<(), String> {
    text(bio, MAX_BIO)
}

pub fn avatar_url(url: &str) -> Result<(), String> {
    http_url(url, MAX_AVATAR_URL)
}

pub fn preferences(value: &Value) -> Result<(), String> {
    json_object(
        value,
        MAX_PREFERENCES_BYTES,
        &format!("{MAX_PREFERENCES_BYTES} bytes"),
    )
}

/// A new password that meets the policy, ready to hash.
pub fn new_password(password: &str) -> Result<SecretString, String> {
    crate::auth::password::check_policy(password)?;
    Ok(SecretString::from(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(email("ada@example.com").is_ok());
        assert_eq!(
            email("  Ada.Lovelace+tag@sub.example.org "),
            Ok("ada.lovelace+tag@sub.example.org".to_owned())
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@x.com",
            "ada@x..com",
            "'; DROP TABLE users; --@x.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn urls_and_text() {
        assert!(avatar_url("https://cdn.example.com/a.png").is_ok());
        assert!(avatar_url("javascript:alert(1)").is_err());
        assert!(avatar_url("ftp://example.com/a.png").is_err());
        assert!(avatar_url("https://").is_err());
        assert!(display_name("  ").is_err());
        assert_eq!(display_name(" Zoë 🎧 "), Ok("Zoë 🎧".to_owned()));
        assert!(bio(&"x".repeat(1001)).is_err());
        assert!(preferences(&serde_json::json!([1])).is_err());
        assert!(preferences(&serde_json::json!({"theme": "dark"})).is_ok());
    }
}
