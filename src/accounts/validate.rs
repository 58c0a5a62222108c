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

/// A valid email address, in its canonical form: a dot-atom local part (RFC 5322: no
/// leading, trailing or doubled dot, no quoting) at a domain of at least two labels.
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
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| local.len() <= 64 && dot_atom(local) && hostname(domain));
    if valid {
        Ok(normalize_email(email))
    } else {
        Err("is not a valid email address".into())
    }
}

/// RFC 5322 `dot-atom-text`: atoms of letters, digits and ``!#$%&'*+-/=?^_`{|}~`` joined by single dots.
fn dot_atom(local: &str) -> bool {
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c))
    })
}

/// A DNS name of at least two labels (letters, digits, inner hyphens) and a non-numeric top label.
fn hostname(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
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

/// Local parts shorter than this may appear in a password (`al@…` and "metal band").
const MIN_PERSONAL_LEN: usize = 3;

/// Refuses a password that is, or contains, the account's email address or the name
/// before its `@` (or before a `+tag`), in any case.
pub fn not_personal(password: &str, email: &str) -> Result<(), String> {
    let (password, email) = (password.to_lowercase(), normalize_email(email));
    if !email.is_empty() && password.contains(&email) {
        return Err("must not contain your email address".into());
    }
    let local = email
        .rsplit_once('@')
        .map_or(email.as_str(), |(local, _)| local);
    let base = local.split_once('+').map_or(local, |(base, _)| base);
    if [local, base]
        .iter()
        .any(|name| name.chars().count() >= MIN_PERSONAL_LEN && password.contains(name))
    {
        return Err("must not contain the name in your email address".into());
    }
    Ok(())
}

/// The password of a new account with this email: the policy, and not personal.
pub fn account_password(password: &str, email: &str) -> Result<SecretString, String> {
    let checked = new_password(password)?;
    not_personal(password, email)?;
    Ok(checked)
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
            "local.@example.com",
            ".local@example.com",
            "a..b@example.com",
            "ada@-x.com",
            "ada@x_y.com",
            "ada@example.123",
            "\"ada\"@example.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(250))).is_err());
        for good in [
            "o'brien@example.com",
            "a.b-c+d_e@mail.example.co.uk",
            "x@a1.io",
        ] {
            assert!(email(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn passwords_must_not_be_the_email() {
        let email = "Ada.Lovelace+studio@example.com";
        for bad in [
            "ada.lovelace+studio@example.com",
            "my ADA.LOVELACE+STUDIO@EXAMPLE.COM!",
            "ada.lovelace+studio",
            "I am ada.lovelace 1815",
        ] {
            assert!(account_password(bad, email).is_err(), "{bad}");
        }
        assert!(account_password("violet kettle 9 tambourine", email).is_ok());
        // A short name may appear by chance.
        assert!(not_personal("metal band forever", "al@example.com").is_ok());
        assert!(not_personal("my name is bob!!", "bob@example.com").is_err());
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
