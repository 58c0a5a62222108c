//! Where Stripe may send a customer back to: absolute http(s) URLs on the allowed origins only (no open redirect).

use crate::state::App;

/// `scheme://host[:port]` of an absolute http(s) URL, lower-cased, default port dropped;
/// `None` for anything else (userinfo, backslashes, whitespace and control characters included).
pub fn origin(url: &str) -> Option<String> {
    if url.is_empty()
        || url.len() > 2048
        || url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", host.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty()
            || host.starts_with('.')
            || host.starts_with('-')
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) if p.is_empty() || p.parse::<u16>().is_err() => return None,
        Some(p) if p.trim_start_matches('0') == default_port => None,
        Some(p) => Some(p.trim_start_matches('0').to_owned()),
    };
    Some(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The origins a success, cancel or return URL may point at: `public_base_url`'s and
/// `billing_redirect_origins`.
pub fn allowed_origins(app: &App) -> Vec<String> {
    std::iter::once(app.settings.server.public_base_url.as_str())
        .chain(
            app.settings
                .billing
                .billing_redirect_origins
                .iter()
                .map(String::as_str),
        )
        .filter_map(origin)
        .collect()
}

/// A client-given redirect URL, checked against the allowed origins (no open redirect).
pub fn check_redirect(app: &App, url: &str) -> Result<(), String> {
    let Some(given) = origin(url) else {
        return Err("must be an absolute http(s) URL of at most 2048 characters".into());
    };
    let allowed = allowed_origins(app);
    if allowed.contains(&given) {
        Ok(())
    } else {
        Err(format!(
            "must point at one of the allowed origins ({}); {given} is not one",
            allowed.join(", ")
        ))
    }
}

/// Adds `session_id={CHECKOUT_SESSION_ID}` (filled in by Stripe) unless the URL asks for it already.
pub fn with_session_placeholder(url: &str) -> String {
    const PLACEHOLDER: &str = "{CHECKOUT_SESSION_ID}";
    if url.contains(PLACEHOLDER) {
        return url.to_owned();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{separator}session_id={PLACEHOLDER}");
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_tricks_refused() {
        assert_eq!(
            origin("https://Studio.Example.com/billing?x=1").as_deref(),
            Some("https://studio.example.com")
        );
        assert_eq!(
            origin("https://studio.example.com:443/").as_deref(),
            Some("https://studio.example.com")
        );
        assert_eq!(
            origin("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(
            origin("http://[::1]:8080/x").as_deref(),
            Some("http://[::1]:8080")
        );
        for bad in [
            "https://studio.example.com@evil.com/",
            "https://evil.com\\@studio.example.com",
            "javascript:alert(1)",
            "//evil.com",
            "https:///x",
            "https://evil.com:99999/",
            "https://exa mple.com/",
            "ftp://example.com/",
            "https://studio.example.com:/",
        ] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_success_url_carries_the_session_id() {
        assert_eq!(
            with_session_placeholder("https://a.com/ok"),
            "https://a.com/ok?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(
            with_session_placeholder("https://a.com/ok?x=1#top"),
            "https://a.com/ok?x=1&session_id={CHECKOUT_SESSION_ID}#top"
        );
        assert_eq!(
            with_session_placeholder("https://a.com/ok?s={CHECKOUT_SESSION_ID}"),
            "https://a.com/ok?s={CHECKOUT_SESSION_ID}"
        );
    }
}
