//! The envelope of a Stripe event (id, type, mode, object) and the live/test mode of our key.

use secrecy::ExposeSecret;
use serde_json::Value;

use crate::platform::config::Settings;

/// The envelope fields the intake stores next to the raw body.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub id: String,
    pub event_type: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub object_id: Option<String>,
}

fn short_text(value: Option<&Value>, field: &str) -> Result<String, String> {
    match value.and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control) => {
            Ok(s.to_owned())
        }
        _ => Err(format!(
            "`{field}` must be a non-empty string of at most 255 bytes"
        )),
    }
}

pub(crate) fn parse_envelope(body: &str) -> Result<Envelope, String> {
    let event: Value =
        serde_json::from_str(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    if !event.is_object() {
        return Err("the body is not a Stripe event object".into());
    }
    let object = event
        .pointer("/data/object")
        .filter(|o| o.is_object())
        .ok_or("`data.object` must be an object")?;
    Ok(Envelope {
        id: short_text(event.get("id"), "id")?,
        event_type: short_text(event.get("type"), "type")?,
        livemode: event
            .get("livemode")
            .and_then(Value::as_bool)
            .ok_or("`livemode` must be true or false")?,
        api_version: match event.get("api_version") {
            None | Some(Value::Null) => None,
            Some(v) => Some(short_text(Some(v), "api_version")?),
        },
        object_id: match object.get("id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(short_text(Some(v), "data.object.id")?),
        },
    })
}

/// The mode of the configured secret key: `Some(true)` for live, `Some(false)` for test,
/// `None` when no key (or an unrecognised one) is set, which accepts both modes.
pub fn key_livemode(settings: &Settings) -> Option<bool> {
    let key = settings.secrets.stripe_secret_key.as_ref()?;
    let key = key.expose_secret();
    if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        Some(true)
    } else if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
        Some(false)
    } else {
        None
    }
}

pub(crate) fn mode(live: bool) -> &'static str {
    if live { "live" } else { "test" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let ok = parse_envelope(
            r#"{"id":"evt_1","type":"invoice.paid","livemode":false,"api_version":"2024-06-20","data":{"object":{"id":"in_1"}}}"#,
        )
        .unwrap();
        assert_eq!(ok.id, "evt_1");
        assert_eq!(ok.event_type, "invoice.paid");
        assert_eq!(ok.object_id.as_deref(), Some("in_1"));
        assert_eq!(ok.api_version.as_deref(), Some("2024-06-20"));
        assert!(!ok.livemode);
        for bad in [
            "[]",
            "nope",
            r#"{"type":"x","livemode":false,"data":{"object":{}}}"#,
            r#"{"id":"evt_1","livemode":false,"data":{"object":{}}}"#,
            r#"{"id":"evt_1","type":"x","data":{"object":{}}}"#,
            r#"{"id":"evt_1","type":"x","livemode":"no","data":{"object":{}}}"#,
            r#"{"id":"evt_1","type":"x","livemode":false}"#,
            r#"{"id":"","type":"x","livemode":false,"data":{"object":{}}}"#,
            r#"{"id":"evt_1","type":"x","livemode":false,"data":{"object":{"id":5}}}"#,
        ] {
            assert!(parse_envelope(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_prefix_gives_the_mode() {
        let with = |key: Option<&str>| {
            let mut settings = Settings::default();
            settings.secrets.stripe_secret_key = key.map(|k| k.to_owned().into());
            settings
        };
        assert_eq!(key_livemode(&with(Some("sk_live_abc"))), Some(true));
        assert_eq!(key_livemode(&with(Some("rk_test_abc"))), Some(false));
        assert_eq!(key_livemode(&with(Some("whatever"))), None);
        assert_eq!(key_livemode(&with(None)), None);
    }
}
