//! The account emails: address verification, password reset, a lockout's unlock link,
//! and the notices of changes to two-factor sign-in.

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

/// A change to an account's two-factor sign-in, told to its owner.
#[derive(Debug, Clone, Copy)]
pub enum MfaChange {
    Enabled,
    Disabled,
    RecoveryCodeUsed { remaining: i64 },
    Reset,
}

/// The notice of `change`; the link leads to the account's security settings.
pub fn mfa_notice(base_url: &str, to: &str, change: MfaChange) -> Email {
    let link = format!("{}/account/security", base_url.trim_end_matches('/'));
    let remaining;
    let (subject, intro) = match change {
        MfaChange::Enabled => (
            "Two-factor sign-in is on",
            "Two-factor authentication was turned on for your audiostudio account: signing in now asks for a code from your authenticator app. Keep your recovery codes somewhere safe.",
        ),
        MfaChange::Disabled => (
            "Two-factor sign-in is off",
            "Two-factor authentication was turned off for your audiostudio account: signing in asks only for the password again.",
        ),
        MfaChange::RecoveryCodeUsed { remaining: left } => {
            remaining = format!(
                "A recovery code was used to sign in to your audiostudio account. Each code works once; {left} unused codes are left."
            );
            ("A recovery code was used", remaining.as_str())
        }
        MfaChange::Reset => (
            "Two-factor sign-in was reset",
            "An administrator reset two-factor authentication of your audiostudio account: signing in asks only for the password until you enrol again.",
        ),
    };
    Email::with_link(
        to,
        subject,
        intro,
        "Review your account",
        &link,
        "If it was not you, change your password at once and review your sessions.",
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
