//! The account emails: address verification, password reset and a lockout's unlock link.

use crate::platform::mail::Email;

/// Links point at the configured public base URL, never at the request's Host header.
pub fn verification(base_url: &str, to: &str, token: &str) -> Email {
    let link = format!(
        "{}/verify-email#token={token}",
        base_url.trim_end_matches('/')
    );
    Email::with_link(
        to,
        "Confirm your email address",
        "Please confirm that this address belongs to your audiostudio account.",
        "Confirm your email",
        &link,
        "If you did not create an account, ignore this message.",
    )
}

pub fn password_reset(base_url: &str, to: &str, token: &str) -> Email {
    let link = format!(
        "{}/reset-password#token={token}",
        base_url.trim_end_matches('/')
    );
    Email::with_link(
        to,
        "Reset your password",
        "Someone asked to reset the password of your audiostudio account. The link works once, for 30 minutes.",
        "Choose a new password",
        &link,
        "If it was not you, ignore this message: your password stays as it is.",
    )
}

/// Sent when failed logins lock an account; the link lifts the lock.
pub fn account_locked(base_url: &str, to: &str, token: &str) -> Email {
    let link = format!(
        "{}/unlock-account#token={token}",
        base_url.trim_end_matches('/')
    );
    Email::with_link(
        to,
        "Your account was locked after failed logins",
        "Several wrong passwords were tried for your audiostudio account, so logging in is blocked for a while. If that was you, the link below lifts the lock at once.",
        "Unlock my account",
        &link,
        "If it was not you, someone may be guessing your password: use the link, then choose a new password if it could be guessed.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_use_the_public_base_url_and_html_is_escaped() {
        let email = password_reset("https://audio.example.com/", "a@example.com", "tok");
        assert!(
            email
                .text
                .contains("https://audio.example.com/reset-password#token=tok")
        );
        assert!(
            email
                .html
                .contains("href=\"https://audio.example.com/reset-password#token=tok\"")
        );
    }
}
