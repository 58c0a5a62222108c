//! Keyed GCRA rate limits per route class (governor); counters live in memory by design.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::http::error::{ApiError, Throttle};
use crate::platform::config::Settings;

pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    limit: u32,
    window: Duration,
    what: &'static str,
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
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            limit: burst.get(),
            window,
            what,
        }
    }

    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ApiError::TooManyRequests {
                    detail: format!("too many {} requests; try again later", self.what),
                    throttle: Throttle {
                        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                        limit: self.limit,
                        window_secs: self.window.as_secs(),
                    },
                }
            })
    }

    fn retain_recent(&self) {
        self.limiter.retain_recent();
    }
}

/// The limits of every route class.
pub struct RateLimits {
    pub login_per_ip: RateLimiter,
    pub register_per_ip: RateLimiter,
    pub password_reset_per_ip: RateLimiter,
}

impl RateLimits {
    pub fn from_settings(s: &Settings) -> RateLimits {
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3600);
        RateLimits {
            login_per_ip: RateLimiter::new(
                "login",
                s.rate_limits.rate_limit_login_per_minute,
                MINUTE,
            ),
            register_per_ip: RateLimiter::new(
                "registration",
                s.rate_limits.rate_limit_register_per_hour,
                HOUR,
            ),
            password_reset_per_ip: RateLimiter::new(
                "password reset",
                s.rate_limits.rate_limit_password_reset_per_hour,
                HOUR,
            ),
        }
    }

    /// Forgets keys whose limits have fully replenished, so memory stays bounded.
    pub fn retain_recent(&self) {
        self.login_per_ip.retain_recent();
        self.register_per_ip.retain_recent();
        self.password_reset_per_ip.retain_recent();
    }
}
