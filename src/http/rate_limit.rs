//! Keyed GCRA rate limits per route class (governor); counters live in memory by design.
//!
//! Every route class has one limiter here; [`RateLimits::class_of`] names the class of a
//! request from its method and path. The per-IP classes and the global per-IP ceiling are
//! checked by the [`crate::http::limit_edge::EdgeLimits`] fairing before routing; the
//! per-user classes by the [`crate::http::limit_edge::UserLimit`] guard, right after the
//! auth guard. Both record the outcome so every response of a limited class carries
//! `RateLimit` and `RateLimit-Policy`, and a 429 `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

use crate::http::error::Throttle;
use crate::platform::config::Settings;

type Keyed = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// The outcome of one check: the policy, what is left, and when it is whole again.
#[derive(Debug, Clone)]
pub struct Decision {
    pub limit: u32,
    pub window_secs: u64,
    pub remaining: u32,
    /// Seconds until the quota is whole again (on a refusal: until one request is allowed).
    pub reset_secs: u64,
    pub refused: bool,
    pub what: &'static str,
}

impl Decision {
    pub fn throttle(&self) -> Throttle {
        Throttle {
            retry_after_secs: self.reset_secs.max(1),
            limit: self.limit,
            window_secs: self.window_secs,
        }
    }
}

pub struct RateLimiter {
    limiter: Keyed,
    limit: u32,
    period: Duration,
    window: Duration,
    what: &'static str,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RateLimiter {
    /// Allows `limit` requests per key in any `window`, replenished evenly.
    pub fn new(what: &'static str, limit: u32, window: Duration) -> RateLimiter {
        let burst = NonZeroU32::new(limit.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = (window / burst.get()).max(Duration::from_millis(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        RateLimiter {
            limiter: governor::DefaultKeyedRateLimiter::<String>::keyed(quota)
                .with_middleware::<StateInformationMiddleware>(),
            limit: burst.get(),
            period,
            window,
            what,
        }
    }

    /// Counts one request for `key`.
    pub fn check(&self, key: &str) -> Decision {
        let mut decision = Decision {
            limit: self.limit,
            window_secs: self.window.as_secs(),
            remaining: 0,
            reset_secs: 0,
            refused: false,
            what: self.what,
        };
        match self.limiter.check_key(&key.to_owned()) {
            Ok(state) => {
                decision.remaining = state.remaining_burst_capacity();
                let used = self.limit.saturating_sub(decision.remaining);
                decision.reset_secs = ceil_secs(self.period * used);
            }
            Err(not_until) => {
                decision.refused = true;
                decision.reset_secs =
                    ceil_secs(not_until.wait_time_from(DefaultClock::default().now()));
            }
        }
        decision
    }

    fn retain_recent(&self) {
        self.limiter.retain_recent();
    }
}

/// Which limiter a request counts against, and by what key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Login,
    Register,
    PasswordReset,
    /// verify-email, resend-verification, refresh, plans.
    Public,
    Webhook,
    TokenMutation,
    SocialClaim,
    Checkout,
    History,
    AccountChange,
}

impl Class {
    /// Per-user classes are keyed by the authenticated user; the rest by client address.
    pub fn per_user(self) -> bool {
        matches!(
            self,
            Class::TokenMutation
                | Class::SocialClaim
                | Class::Checkout
                | Class::History
                | Class::AccountChange
        )
    }
}

/// The limits of every route class.
pub struct RateLimits {
    pub login_per_ip: RateLimiter,
    pub register_per_ip: RateLimiter,
    pub password_reset_per_ip: RateLimiter,
    pub public_per_ip: RateLimiter,
    pub webhook_per_ip: RateLimiter,
    pub global_per_ip: RateLimiter,
    pub token_mutations_per_user: RateLimiter,
    pub social_claims_per_user: RateLimiter,
    pub checkout_per_user: RateLimiter,
    pub history_per_user: RateLimiter,
    pub account_changes_per_user: RateLimiter,
}

impl RateLimits {
    pub fn from_settings(s: &Settings) -> RateLimits {
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3600);
        let r = &s.rate_limits;
        RateLimits {
            login_per_ip: RateLimiter::new("login", r.rate_limit_login_per_minute, MINUTE),
            register_per_ip: RateLimiter::new("registration", r.rate_limit_register_per_hour, HOUR),
            password_reset_per_ip: RateLimiter::new(
                "password reset",
                r.rate_limit_password_reset_per_hour,
                HOUR,
            ),
            public_per_ip: RateLimiter::new("account", r.rate_limit_public_per_minute, MINUTE),
            webhook_per_ip: RateLimiter::new("webhook", r.rate_limit_webhook_per_minute, MINUTE),
            global_per_ip: RateLimiter::new("", r.rate_limit_global_per_minute, MINUTE),
            token_mutations_per_user: RateLimiter::new(
                "token",
                r.rate_limit_token_mutations_per_minute,
                MINUTE,
            ),
            social_claims_per_user: RateLimiter::new(
                "social claim",
                r.rate_limit_social_claims_per_hour,
                HOUR,
            ),
            checkout_per_user: RateLimiter::new("checkout", r.rate_limit_checkout_per_hour, HOUR),
            history_per_user: RateLimiter::new(
                "billing history",
                r.rate_limit_billing_history_per_minute,
                MINUTE,
            ),
            account_changes_per_user: RateLimiter::new(
                "account change",
                r.rate_limit_account_changes_per_hour,
                HOUR,
            ),
        }
    }

    /// The class of a request, from its method and path (`None`: only the global ceiling).
    pub fn class_of(method: &str, path: &str) -> Option<Class> {
        let path = path.trim_end_matches('/');
        let class = match (method, path) {
            ("POST", "/api/auth/login" | "/api/auth/mfa/verify" | "/admin/api/login") => {
                Class::Login
            }
            ("POST", "/api/auth/register") => Class::Register,
            ("POST", "/api/auth/request-password-reset" | "/api/auth/reset-password")
            | ("POST", "/api/auth/unlock-account") => Class::PasswordReset,
            ("POST", "/api/auth/verify-email" | "/api/auth/resend-verification")
            | ("POST", "/api/auth/refresh")
            | ("GET", "/api/subscriptions/plans") => Class::Public,
            ("POST", "/api/webhooks/stripe") => Class::Webhook,
            ("POST", "/api/tokens/use" | "/api/tokens/holds") => Class::TokenMutation,
            ("POST", p)
                if p.starts_with("/api/tokens/holds/")
                    && (p.ends_with("/capture") || p.ends_with("/release")) =>
            {
                Class::TokenMutation
            }
            ("POST", "/api/tokens/social") => Class::SocialClaim,
            ("POST", "/api/subscriptions/checkout" | "/api/subscriptions/portal")
            | ("POST", "/api/tokens/purchase") => Class::Checkout,
            ("GET", "/api/subscriptions/history") => Class::History,
            ("PUT", "/api/auth/profile") | ("POST", "/api/auth/change-password") => {
                Class::AccountChange
            }
            ("POST", p) if p.starts_with("/api/auth/mfa/totp/") => Class::AccountChange,
            _ => return None,
        };
        Some(class)
    }

    pub fn limiter(&self, class: Class) -> &RateLimiter {
        match class {
            Class::Login => &self.login_per_ip,
            Class::Register => &self.register_per_ip,
            Class::PasswordReset => &self.password_reset_per_ip,
            Class::Public => &self.public_per_ip,
            Class::Webhook => &self.webhook_per_ip,
            Class::TokenMutation => &self.token_mutations_per_user,
            Class::SocialClaim => &self.social_claims_per_user,
            Class::Checkout => &self.checkout_per_user,
            Class::History => &self.history_per_user,
            Class::AccountChange => &self.account_changes_per_user,
        }
    }

    /// Forgets keys whose limits have fully replenished, so memory stays bounded.
    pub fn retain_recent(&self) {
        for limiter in [
            &self.login_per_ip,
            &self.register_per_ip,
            &self.password_reset_per_ip,
            &self.public_per_ip,
            &self.webhook_per_ip,
            &self.global_per_ip,
            &self.token_mutations_per_user,
            &self.social_claims_per_user,
            &self.checkout_per_user,
            &self.history_per_user,
            &self.account_changes_per_user,
        ] {
            limiter.retain_recent();
        }
    }
}
