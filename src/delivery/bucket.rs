//! A token bucket on tokio's clock (so tests drive it with `tokio::time::pause`).
//!
//! LINE limits multicast to 200 requests per second per channel with a token bucket of its own. Ours holds
//! at most `capacity` tokens (default: one second's worth), refills continuously at `rate` per second, and
//! [`TokenBucket::acquire`] *waits* for a token: when the bucket is empty the sender blocks, it never drops.
//! After a 429, [`TokenBucket::drain`] empties it, as LINE's is right after a 429.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilling at `rate_per_sec`.
    pub fn new(rate_per_sec: f64, capacity: f64) -> Self {
        let rate = rate_per_sec.max(0.001);
        let capacity = capacity.max(1.0);
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        self.last = now;
    }

    /// Takes a token if one is there; otherwise says how long until one is.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// Waits for a token. Cancel-safe: a token is only taken when this returns.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_take(Instant::now()) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Empties the bucket (after a 429).
    pub fn drain(&mut self) {
        self.refill(Instant::now());
        self.tokens = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_allows_a_burst_then_holds_to_the_rate() {
        let mut b = TokenBucket::new(200.0, 200.0);
        let start = Instant::now();
        for _ in 0..200 {
            b.acquire().await;
        }
        assert_eq!(Instant::now(), start, "the burst of 200 needs no waiting");
        for _ in 0..400 {
            b.acquire().await;
        }
        let waited = Instant::now() - start;
        // 400 more tokens at 200/s take 2 s.
        assert!(
            waited >= Duration::from_millis(1995) && waited <= Duration::from_millis(2010),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_drained_bucket_blocks_until_refilled() {
        let mut b = TokenBucket::new(10.0, 10.0);
        b.drain();
        let start = Instant::now();
        b.acquire().await;
        let waited = Instant::now() - start;
        assert!(waited >= Duration::from_millis(99), "{waited:?}");
    }
}
