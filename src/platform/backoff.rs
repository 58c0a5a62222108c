//! The one retry schedule of background work (email delivery, webhook processing).

use rand::Rng;

use crate::platform::clock::Millis;

/// The delay before the next attempt after `attempts` failed ones: 30 s doubling to a
/// one-hour cap, plus up to 20% jitter so retries of many items spread out.
pub fn backoff_ms(attempts: u32) -> Millis {
    let base = backoff_base_ms(attempts);
    base + rand::rng().random_range(0..=base / 5)
}

/// `backoff_ms` without its jitter: the least the delay can be.
pub fn backoff_base_ms(attempts: u32) -> Millis {
    (30_000i64 << attempts.saturating_sub(1).min(7)).min(3_600_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        assert_eq!(backoff_base_ms(1), 30_000);
        assert_eq!(backoff_base_ms(2), 60_000);
        assert_eq!(backoff_base_ms(3), 120_000);
        assert_eq!(backoff_base_ms(40), 3_600_000);
        for attempts in [1, 2, 5, 9, 100] {
            let base = backoff_base_ms(attempts);
            for _ in 0..50 {
                let delay = backoff_ms(attempts);
                assert!((base..=base + base / 5).contains(&delay), "{delay}");
            }
        }
    }
}
