//! A token bucket: how the core paces what a client may ask for faster than a person would.

use crate::ids::Millis;
use serde::{Deserialize, Serialize};

/// `burst` tokens at most, earned back at `per_second`. Counted in thousandths of a
/// token so that any rate is exact at millisecond resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBucket {
    burst: u64,
    per_second: u64,
    /// Thousandths of a token held at `counted_at`.
    milli_tokens: u64,
    counted_at: Millis,
}

const WHOLE: u64 = 1000;

impl TokenBucket {
    /// A full bucket.
    pub fn full(burst: u64, per_second: u64, now: Millis) -> Self {
        Self { burst, per_second, milli_tokens: burst.saturating_mul(WHOLE), counted_at: now }
    }

    fn refill(&mut self, now: Millis) {
        let earned = now.since(self.counted_at).saturating_mul(self.per_second);
        self.milli_tokens = self.milli_tokens.saturating_add(earned).min(self.burst.saturating_mul(WHOLE));
        self.counted_at = self.counted_at.max(now);
    }

    /// Spends one token if there is one.
    pub fn take(&mut self, now: Millis) -> bool {
        self.refill(now);
        if self.milli_tokens < WHOLE {
            return false;
        }
        self.milli_tokens -= WHOLE;
        true
    }

    /// When the next token is there (`None`: never, the bucket does not refill).
    pub fn next_token_at(&self) -> Option<Millis> {
        if self.milli_tokens >= WHOLE {
            return Some(self.counted_at);
        }
        if self.per_second == 0 {
            return None;
        }
        Some(self.counted_at.plus((WHOLE - self.milli_tokens).div_ceil(self.per_second)))
    }

    /// Whether it is back to `burst` (and so no different from a new one).
    pub fn is_full(&mut self, now: Millis) -> bool {
        self.refill(now);
        self.milli_tokens >= self.burst.saturating_mul(WHOLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_gives_its_burst_then_nothing() {
        let mut bucket = TokenBucket::full(3, 1, Millis(0));
        assert!((0..3).all(|_| bucket.take(Millis(0))));
        assert!(!bucket.take(Millis(0)));
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let mut bucket = TokenBucket::full(1, 4, Millis(0));
        assert!(bucket.take(Millis(0)));
        assert_eq!(bucket.next_token_at(), Some(Millis(250)));
        assert!(!bucket.take(Millis(249)));
        assert!(bucket.take(Millis(250)));
    }

    #[test]
    fn a_bucket_never_holds_more_than_its_burst() {
        let mut bucket = TokenBucket::full(2, 1000, Millis(0));
        assert!(bucket.is_full(Millis(1_000_000)));
        assert!(bucket.take(Millis(1_000_000)) && bucket.take(Millis(1_000_000)));
        assert!(!bucket.take(Millis(1_000_000)));
    }

    #[test]
    fn a_bucket_without_rate_never_refills() {
        let mut bucket = TokenBucket::full(1, 0, Millis(0));
        assert!(bucket.take(Millis(0)));
        assert_eq!(bucket.next_token_at(), None);
        assert!(!bucket.take(Millis(u64::MAX)));
    }

    #[test]
    fn a_clock_that_steps_back_earns_nothing() {
        let mut bucket = TokenBucket::full(1, 1, Millis(5_000));
        assert!(bucket.take(Millis(5_000)));
        assert!(!bucket.take(Millis(0)));
        assert!(bucket.take(Millis(6_000)));
    }
}
