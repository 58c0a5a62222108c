//! The rules of the OpenAPI document that a derive cannot state: constraints that follow
//! this server's settings (the features spends name, the longest hold, the origins billing
//! redirects may point at), bodies that take exactly one of two fields, and optional bodies
//! (absent or an object, never `null`).

use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType};
use utoipa::openapi::{OpenApi, RefOr, Type};

use crate::billing::redirects::origin;
use crate::platform::config::Settings;

/// Applies every rule to the merged document.
pub fn apply(doc: &mut OpenApi, settings: &Settings) {
    let features: Vec<serde_json::Value> = settings
        .tokens
        .token_features
        .iter()
        .map(|f| f.as_str().into())
        .collect();
    for body in ["UseRequest", "HoldRequest"] {
        property(doc, body, "feature", |p| {
            p.enum_values = Some(features.clone())
        });
    }
    let longest = settings.tokens.hold_max_ttl_secs;
    property(doc, "HoldRequest", "ttl_seconds", |p| {
        p.maximum = Some(longest.into());
    });
    let redirect = redirect_pattern(settings);
    for (body, field) in [
        ("CheckoutRequest", "success_url"),
        ("CheckoutRequest", "cancel_url"),
        ("PurchaseRequest", "success_url"),
        ("PurchaseRequest", "cancel_url"),
        ("PortalRequest", "return_url"),
    ] {
        property(doc, body, field, |p| {
            p.pattern = Some(redirect.clone());
            p.max_length = Some(2048);
        });
    }
    exactly_one(doc, "MfaVerifyRequest", ["code", "recovery_code"]);
    exactly_one(doc, "AddRequest", ["user_id", "email"]);
    optional_bodies(doc);
}

/// The object schema `body` of the components, if it is one.
fn object<'a>(doc: &'a mut OpenApi, body: &str) -> Option<&'a mut utoipa::openapi::Object> {
    let components = doc.components.as_mut()?;
    match components.schemas.get_mut(body)? {
        RefOr::T(Schema::Object(object)) => Some(object),
        _ => None,
    }
}

/// Changes the property `field` of the component `body`.
fn property(
    doc: &mut OpenApi,
    body: &str,
    field: &str,
    change: impl FnOnce(&mut utoipa::openapi::Object),
) {
    let Some(object) = object(doc, body) else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(p))) = object.properties.get_mut(field) {
        change(p);
    }
}

/// The server refuses both and neither of `fields`, and reads `null` as absent: the body
/// has exactly one of them, a string.
fn exactly_one(doc: &mut OpenApi, body: &str, fields: [&str; 2]) {
    let Some(object) = object(doc, body) else {
        return;
    };
    for field in fields {
        if let Some(RefOr::T(Schema::Object(p))) = object.properties.get_mut(field) {
            p.schema_type = SchemaType::Type(Type::String);
        }
    }
    let one = |field: &str| ObjectBuilder::new().required(field).build();
    let choice = OneOfBuilder::new()
        .item(one(fields[0]))
        .item(one(fields[1]));
    let whole = AllOfBuilder::new()
        .item(object.clone())
        .item(choice)
        .build();
    if let Some(components) = doc.components.as_mut() {
        components
            .schemas
            .insert(body.to_owned(), RefOr::T(Schema::AllOf(whole)));
    }
}

/// An `Option<T>` body is documented as `T` or `null`; the server takes no body or a `T`
/// (the body is not required), and refuses a JSON `null`.
fn optional_bodies(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.post, &mut item.put, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let Some(RefOr::T(body)) = operation.request_body.as_mut() else {
                continue;
            };
            for content in body.content.values_mut() {
                let RefOr::T(content) = content else {
                    continue;
                };
                let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
                    continue;
                };
                let null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
                if one_of.items.len() == 2 && one_of.items.iter().any(null) {
                    let kept = one_of.items.iter().find(|s| !null(s)).cloned();
                    content.schema = kept;
                }
            }
        }
    }
}

/// An absolute URL on one of the allowed origins (`billing::redirects`), as a pattern:
/// the origin exactly (any letter case), then nothing or a path, query or fragment.
fn redirect_pattern(settings: &Settings) -> String {
    let origins = std::iter::once(settings.server.public_base_url.as_str())
        .chain(
            settings
                .billing
                .billing_redirect_origins
                .iter()
                .map(String::as_str),
        )
        .filter_map(origin)
        .map(|o| any_case(&regex_escape(&o)))
        .collect::<Vec<_>>();
    // Printable ASCII but the backslash: the server also takes other non-space characters,
    // but counts the 2048 in bytes.
    let rest = "[!-\\[\\]-~]*";
    format!("^({})([/?#]{rest})?$", origins.join("|"))
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `[Hh][Tt]...` for each ASCII letter: patterns have no portable case-insensitive flag.
fn any_case(pattern: &str) -> String {
    pattern
        .chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_patterns_match_what_the_server_allows() {
        let settings = Settings::default();
        let pattern = regex::Regex::new(&redirect_pattern(&settings)).expect("a regex");
        assert!(pattern.is_match("http://localhost:8000"));
        assert!(pattern.is_match("HTTP://LocalHost:8000/billing/done?x=1"));
        assert!(!pattern.is_match("http://localhost:8001/"));
        assert!(!pattern.is_match("http://localhost:8000.evil.com/"));
        assert!(!pattern.is_match("http://localhost:8000/a b"));
    }
}
