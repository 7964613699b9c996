//! The one backoff rule: full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS Architecture
//! Blog, 2015). After the `n`-th failure in a row the wait is uniform in `[0, min(cap, base · 2^(n-1))]`, so
//! many clients that failed together do not come back together. Used by the JMA feed poller, the LINE client,
//! the outbox dispatcher and the MQTT reconnect loop.

use std::time::Duration;

use rand::Rng as _;

/// The upper end of the wait after `failures` failures in a row: `base · 2^(failures-1)`, at most `cap`
/// (`failures` 0 counts as 1).
pub fn ceiling(failures: u32, base: Duration, cap: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << doublings).min(cap)
}

/// A random wait in `[0, ceiling(failures, base, cap)]`.
pub fn full_jitter(failures: u32, base: Duration, cap: Duration) -> Duration {
    at(failures, base, cap, rand::thread_rng().gen::<f64>())
}

/// The wait for a given uniform draw `unit` in `[0, 1)` (deterministic, for tests and for callers that draw
/// their own number).
pub fn at(failures: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    ceiling(failures, base, cap).mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Duration = Duration::from_millis(500);
    const CAP: Duration = Duration::from_secs(30);

    #[test]
    fn the_ceiling_doubles_from_the_base_and_stops_at_the_cap() {
        assert_eq!(ceiling(0, B, CAP), B);
        assert_eq!(ceiling(1, B, CAP), B);
        assert_eq!(ceiling(2, B, CAP), Duration::from_secs(1));
        assert_eq!(ceiling(4, B, CAP), Duration::from_secs(4));
        assert_eq!(ceiling(7, B, CAP), CAP);
        assert_eq!(ceiling(u32::MAX, B, CAP), CAP, "no overflow");
    }

    #[test]
    fn draws_spread_over_the_whole_range_and_never_exceed_the_ceiling() {
        assert_eq!(at(3, B, CAP, 0.0), Duration::ZERO);
        assert_eq!(at(3, B, CAP, 0.5), Duration::from_secs(1));
        assert!(at(3, B, CAP, 0.999_999) > Duration::from_millis(1999));
        for n in 1..40 {
            for _ in 0..20 {
                assert!(full_jitter(n, B, CAP) <= ceiling(n, B, CAP));
            }
        }
        let draws: std::collections::HashSet<_> = (0..50).map(|_| full_jitter(6, B, CAP)).collect();
        assert!(draws.len() > 1, "jittered");
    }
}
