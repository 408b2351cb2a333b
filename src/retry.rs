//! The retry policy, in one place: exponential backoff with full jitter,
//! overridden by the server's Retry-After when it gave one.
//!
//! The backoff crate supplies the exponential envelope (initial interval,
//! multiplier, cap); full jitter then draws the actual wait uniformly from
//! `[0, envelope]`, which spreads many clients that failed together far
//! better than the crate's ±50 % randomisation.

use std::time::Duration;

use backoff::backoff::Backoff as _;
use chrono::{DateTime, Utc};
use rand::Rng;

/// How a caller retries one kind of operation.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// First envelope.
    pub initial: Duration,
    /// Largest envelope.
    pub max: Duration,
}

impl Policy {
    /// Retries of token refreshes and API calls: 1 s doubling to 5 min.
    pub const DEFAULT: Policy = Policy {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(300),
    };

    /// A fresh backoff state for one sequence of attempts.
    pub fn start(self) -> Retry {
        Retry {
            envelope: backoff::ExponentialBackoffBuilder::new()
                .with_initial_interval(self.initial)
                .with_max_interval(self.max)
                .with_multiplier(2.0)
                .with_randomization_factor(0.0)
                .with_max_elapsed_time(None)
                .build(),
        }
    }
}

/// The state of one sequence of attempts.
#[derive(Debug)]
pub struct Retry {
    /// Exponential envelope without randomisation.
    envelope: backoff::ExponentialBackoff,
}

impl Retry {
    /// The wait before the next attempt: until `not_before` when the server
    /// said so (never earlier), else a full-jitter draw from the envelope.
    pub fn next_wait(&mut self, now: DateTime<Utc>, not_before: Option<DateTime<Utc>>) -> Duration {
        let cap = self
            .envelope
            .next_backoff()
            .unwrap_or(self.envelope.max_interval);
        match not_before {
            Some(t) => (t - now).to_std().unwrap_or(Duration::ZERO),
            None => cap.mul_f64(rand::thread_rng().gen::<f64>()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn waits_grow_within_the_envelope_and_cap() {
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let mut r = Policy::DEFAULT.start();
        let mut caps = vec![];
        for i in 0..12 {
            let w = r.next_wait(now, None);
            let cap = Duration::from_secs(1u64 << i.min(30)).min(Duration::from_secs(300));
            assert!(w <= cap, "attempt {i}: {w:?} > {cap:?}");
            caps.push(w);
        }
        // With full jitter, late waits are on average far larger than early ones.
        let early: f64 = caps[..3].iter().map(Duration::as_secs_f64).sum();
        let late: f64 = caps[9..].iter().map(Duration::as_secs_f64).sum();
        assert!(late > early, "{caps:?}");
    }

    #[test]
    fn retry_after_is_honoured_exactly() {
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let mut r = Policy::DEFAULT.start();
        let w = r.next_wait(now, Some(now + chrono::TimeDelta::seconds(42)));
        assert_eq!(w, Duration::from_secs(42));
        assert_eq!(
            r.next_wait(now, Some(now - chrono::TimeDelta::seconds(5))),
            Duration::ZERO
        );
    }
}
