//! Input validation: each field is parsed into the value the handler uses, and every
//! failure becomes one entry of the 422 field map, so a client sees all its mistakes at once.
//!
//! ```text
//! let mut checks = Checks::default();
//! let amount = checks.field("amount", amount(body.amount));
//! let feature = checks.field("feature", feature(&settings, &body.feature));
//! let (amount, feature) = checks.finish((amount, feature))?;
//! ```

use crate::http::error::{ApiError, ApiResult, FieldErrors};

/// Collects field errors while keeping the parsed values.
#[derive(Default)]
pub struct Checks(FieldErrors);

impl Checks {
    /// The parsed value of `field`, or `None` with its message recorded.
    pub fn field<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(message) => {
                self.0.entry(field.to_owned()).or_default().push(message);
                None
            }
        }
    }

    /// Every parsed value (`Option`s, alone or in a tuple), or the 422 of every failure.
    pub fn finish<P: Parsed>(self, parsed: P) -> ApiResult<P::Value> {
        if !self.0.is_empty() {
            return Err(ApiError::Validation(self.0));
        }
        // Each `None` came with a recorded message, so with none recorded all are `Some`.
        parsed.all().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "a field failed validation without a message"
            ))
        })
    }
}

/// The values `Checks::field` handed out: all present once no check failed.
pub trait Parsed {
    type Value;
    fn all(self) -> Option<Self::Value>;
}

impl<T> Parsed for Option<T> {
    type Value = T;
    fn all(self) -> Option<T> {
        self
    }
}

macro_rules! parsed_tuple {
    ($($name:ident),+) => {
        impl<$($name),+> Parsed for ($(Option<$name>,)+) {
            type Value = ($($name,)+);
            #[allow(non_snake_case)]
            fn all(self) -> Option<Self::Value> {
                let ($($name,)+) = self;
                Some(($($name?,)+))
            }
        }
    };
}

parsed_tuple!(A);
parsed_tuple!(A, B);
parsed_tuple!(A, B, C);
parsed_tuple!(A, B, C, D);
parsed_tuple!(A, B, C, D, E);
parsed_tuple!(A, B, C, D, E, F);

/// Free text of at most `max` characters, without control characters but newlines and tabs.
pub fn text(value: &str, max: usize) -> Result<(), String> {
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

/// One line of at most `max` characters, without any control character.
pub fn line(value: &str, max: usize) -> Result<(), String> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// An absolute http(s) URL with a host, at most `max` bytes.
pub fn http_url(url: &str, max: usize) -> Result<(), String> {
    if url.len() > max {
        return Err(format!("must be at most {max} characters"));
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

/// A JSON object of at most `max_bytes` once serialised (`shown` is that limit as the
/// message states it, e.g. "4 KiB").
pub fn json_object(value: &serde_json::Value, max_bytes: usize, shown: &str) -> Result<(), String> {
    if !value.is_object() {
        return Err("must be a JSON object".into());
    }
    if value.to_string().len() > max_bytes {
        return Err(format!("must be at most {shown} as JSON"));
    }
    Ok(())
}

/// Parses an RFC 3339 time into unix milliseconds.
pub fn rfc3339_millis(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// One of `allowed`, for query parameters such as `status` and `type`.
pub fn one_of<'a>(value: &str, allowed: &[&'a str]) -> Result<&'a str, String> {
    allowed
        .iter()
        .find(|a| **a == value)
        .copied()
        .ok_or_else(|| format!("must be one of {}", allowed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_values_come_back_only_when_every_field_is_valid() {
        let mut checks = Checks::default();
        let a = checks.field("a", Ok::<_, String>(1));
        let b = checks.field("b", Ok::<_, String>("x"));
        assert_eq!(checks.finish((a, b)).unwrap(), (1, "x"));

        let mut checks = Checks::default();
        let a = checks.field("a", Err::<i32, _>("is wrong".into()));
        let b = checks.field("b", Err::<i32, _>("is wrong too".into()));
        let Err(ApiError::Validation(errors)) = checks.finish((a, b)) else {
            panic!("expected a 422");
        };
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn urls_text_and_objects() {
        assert!(http_url("https://cdn.example.com/a.png", 2048).is_ok());
        assert!(http_url("javascript:alert(1)", 2048).is_err());
        assert!(http_url("https://", 2048).is_err());
        assert!(text("a\nb", 10).is_ok());
        assert!(line("a\nb", 10).is_err());
        assert!(json_object(&serde_json::json!([1]), 100, "100 bytes").is_err());
        assert_eq!(one_of("open", &["open", "closed"]), Ok("open"));
        assert!(rfc3339_millis("2030-01-31T00:00:00Z").is_some());
    }
}
