//! The one source of wall-clock time for smartcharged and enode-sim.
//!
//! Every component that needs "now" or needs to wait for a wall-clock instant
//! asks a [`Clock`]. There are two kinds:
//!
//! - [`Clock::system`]: the real UTC clock of the host.
//! - [`Clock::starting_at`] / [`Clock::scaled`]: a virtual clock that starts at
//!   a chosen UTC instant and advances with tokio's monotonic time, optionally
//!   sped up. Under `tokio::time::pause()` it is fully virtual: a test can run
//!   a simulated day in seconds and both the daemon and the simulator, holding
//!   clones of one `Clock`, agree on the time.
//!
//! Because every wait goes through tokio timers, paused time drives the
//! scaled clock too; nothing here reads `std::time::Instant`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

/// A cheap-to-clone handle on a source of UTC time.
#[derive(Clone, Debug)]
pub struct Clock {
    /// Shared so that clones agree on the same origin.
    inner: Arc<Kind>,
}

/// Which time source a [`Clock`] reads.
#[derive(Debug)]
enum Kind {
    /// The host's real clock.
    System,
    /// `origin_wall + (tokio::now - origin) * speed`.
    Scaled {
        /// Wall-clock instant the clock showed when it was created.
        origin_wall: DateTime<Utc>,
        /// tokio instant at which it was created.
        origin: Instant,
        /// How many simulated seconds pass per monotonic second.
        speed: f64,
    },
}

/// The longest single timer a system clock arms before re-reading the wall
/// clock, so that a wall-clock jump (NTP step, suspend) delays a deadline by
/// at most this much.
const SYSTEM_RECHECK: Duration = Duration::from_secs(30);

impl Clock {
    /// The host's real UTC clock: the production time source.
    pub fn system() -> Self {
        Clock {
            inner: Arc::new(Kind::System),
        }
    }

    /// A virtual clock that shows `start` now and advances at real speed of
    /// tokio time; under `tokio::time::pause()` it is fully simulated.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self::scaled(start, 1.0)
    }

    /// A virtual clock that shows `start` now and advances `speed` times as
    /// fast as tokio time (used by the demo to run a day in about a minute).
    ///
    /// # Panics
    /// If `speed` is not a finite positive number: a programming error, since
    /// callers validate user input first.
    pub fn scaled(start: DateTime<Utc>, speed: f64) -> Self {
        assert!(speed.is_finite() && speed > 0.0, "clock speed must be > 0");
        Clock {
            inner: Arc::new(Kind::Scaled {
                origin_wall: start,
                origin: Instant::now(),
                speed,
            }),
        }
    }

    /// How many simulated seconds pass per real second (1 for the system clock).
    pub fn speed(&self) -> f64 {
        match &*self.inner {
            Kind::System => 1.0,
            Kind::Scaled { speed, .. } => *speed,
        }
    }

    /// The current UTC time.
    pub fn now(&self) -> DateTime<Utc> {
        match &*self.inner {
            #[allow(clippy::disallowed_methods)] // the one sanctioned wall-clock read
            Kind::System => Utc::now(),
            Kind::Scaled {
                origin_wall,
                origin,
                speed,
            } => {
                let real = origin.elapsed().as_secs_f64() * speed;
                *origin_wall + TimeDelta::microseconds((real * 1e6) as i64)
            }
        }
    }

    /// Converts a span of clock time into the tokio duration that passes
    /// while it elapses (shorter on a sped-up clock).
    pub fn real_duration(&self, d: Duration) -> Duration {
        Duration::from_secs_f64(d.as_secs_f64() / self.speed())
    }

    /// Waits for a span of clock time.
    pub async fn sleep(&self, d: Duration) {
        let until = self.now() + TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        self.sleep_until(until).await
    }

    /// Waits until the clock shows at least `t`. Returns at once for a past
    /// instant. tokio timers have millisecond resolution, so a clock sped
    /// up `speed` times wakes up to `speed` milliseconds of clock time late. On the system clock, long waits re-read the wall clock
    /// periodically so a clock step does not leave the timer far off.
    pub async fn sleep_until(&self, t: DateTime<Utc>) {
        loop {
            let now = self.now();
            if now >= t {
                return;
            }
            let left = (t - now).to_std().unwrap_or(Duration::ZERO);
            match &*self.inner {
                Kind::System => tokio::time::sleep(left.min(SYSTEM_RECHECK)).await,
                Kind::Scaled { .. } => {
                    // Round up to the next microsecond of real time so the loop
                    // never spins on a sub-resolution remainder.
                    let real = self.real_duration(left) + Duration::from_micros(1);
                    tokio::time::sleep(real).await
                }
            }
        }
    }

    /// A tokio deadline for clock instant `t`, for `tokio::time::timeout_at`
    /// and `sleep_until` in `select!` loops. Exact for virtual clocks; for the
    /// system clock it is computed from the current offset.
    pub fn instant_at(&self, t: DateTime<Utc>) -> Instant {
        let left = (t - self.now()).to_std().unwrap_or(Duration::ZERO);
        Instant::now() + self.real_duration(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 17, 0, 0).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn virtual_clock_follows_paused_tokio_time() {
        let c = Clock::starting_at(t0());
        assert_eq!(c.now(), t0());
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(c.now(), t0() + TimeDelta::hours(1));
    }

    #[tokio::test(start_paused = true)]
    async fn scaled_clock_runs_faster() {
        let c = Clock::scaled(t0(), 60.0);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(c.now(), t0() + TimeDelta::minutes(10));
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_until_wakes_at_the_instant() {
        // tokio timers have millisecond resolution: a clock running 1440
        // times faster wakes at most 1.44 s of clock time late.
        for speed in [1.0, 1440.0] {
            let c = Clock::scaled(t0(), speed);
            let target = t0() + TimeDelta::hours(7) + TimeDelta::microseconds(123);
            c.sleep_until(target).await;
            let late = c.now() - target;
            let bound = TimeDelta::microseconds((speed * 1000.0) as i64 + 1);
            assert!(late >= TimeDelta::zero(), "woke early by {late}");
            assert!(late <= bound, "speed {speed}: overslept by {late}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_one_origin() {
        let a = Clock::starting_at(t0());
        tokio::time::advance(Duration::from_secs(5)).await;
        let b = a.clone();
        assert_eq!(a.now(), b.now());
        assert_eq!(b.now(), t0() + TimeDelta::seconds(5));
    }
}
