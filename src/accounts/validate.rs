//! Validation of account input; each failure becomes one entry of the 422 field map.

use serde_json::Value;

use crate::http::error::{ApiError, FieldErrors};

pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_DISPLAY_NAME: usize = 100;
pub const MAX_BIO: usize = 1000;
pub const MAX_AVATAR_URL: usize = 2048;
pub const MAX_PREFERENCES_BYTES: usize = 16 * 1024;

/// Collects field errors, then turns into `Ok` or a 422.
#[derive(Default)]
pub struct Checks(FieldErrors);

impl Checks {
    pub fn check(mut self, field: &str, result: Result<(), String>) -> Self {
        if let Err(message) = result {
            self.0.entry(field.to_owned()).or_default().push(message);
        }
        self
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// The canonical form of an email address: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub fn email(email: &str) -> Result<(), String> {
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
        Ok(())
    } else {
        Err("is not a valid email address".into())
    }
}

fn text(value: &str, max: usize) -> Result<(), String> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

pub fn display_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be blank".into());
    }
    if name.contains('\n') {
        return Err("must be a single line".into());
    }
    text(name, MAX_DISPLAY_NAME)
}

pub fn bio(bio: &str) -> Result<(), String> {
    text(bio, MAX_BIO)
}

pub fn avatar_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_AVATAR_URL {
        return Err(format!("must be at most {MAX_AVATAR_URL} characters"));
    }
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err("must be an http or https URL".into());
    }
    match rocket::http::uri::Absolute::parse(url) {
        Ok(uri) if uri.authority().is_some_and(|a| !a.host().is_empty()) => Ok(()),
        _ => Err("is not a valid URL".into()),
    }
}

pub fn preferences(value: &Value) -> Result<(), String> {
    if !value.is_object() {
        return Err("must be a JSON object".into());
    }
    if value.to_string().len() > MAX_PREFERENCES_BYTES {
        return Err(format!(
            "must be at most {MAX_PREFERENCES_BYTES} bytes as JSON"
        ));
    }
    Ok(())
}

pub fn new_password(password: &str) -> Result<(), String> {
    crate::auth::password::check_policy(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(email("ada@example.com").is_ok());
        assert!(email("  Ada.Lovelace+tag@sub.example.org ").is_ok());
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
        assert!(display_name("Zoë 🎧").is_ok());
        assert!(bio(&"x".repeat(1001)).is_err());
        assert!(preferences(&serde_json::json!([1])).is_err());
        assert!(preferences(&serde_json::json!({"theme": "dark"})).is_ok());
    }
}
