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
//!
//! A virtual clock can also be stepped ([`Clock::jump`]), as NTP or a
//! suspend steps the host's clock, so tests can show what a wall-clock jump
//! does to the daemon. Waits in progress see the step at once (the system
//! clock sees one within 30 s).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Notify;
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
        /// Sum of all [`Clock::jump`]s, microseconds.
        offset_us: AtomicI64,
        /// Wakes waits in progress when the clock is stepped.
        jumped: Notify,
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
                offset_us: AtomicI64::new(0),
                jumped: Notify::new(),
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
                offset_us,
                ..
            } => {
                let real = origin.elapsed().as_secs_f64() * speed;
                let us = (real * 1e6) as i64 + offset_us.load(Ordering::Relaxed);
                *origin_wall + TimeDelta::microseconds(us)
            }
        }
    }

    /// Steps a virtual clock by `by` (forward if positive, backward if
    /// negative) for every clone, as an NTP step or a resume from suspend
    /// steps the host's clock; waits in progress re-read the clock at once.
    /// Tests use it to show that a wall-clock jump does no harm. Returns
    /// false, and does nothing, on the system clock: only the host steps it.
    #[must_use = "the system clock cannot be stepped"]
    pub fn jump(&self, by: TimeDelta) -> bool {
        match &*self.inner {
            Kind::System => false,
            Kind::Scaled {
                offset_us, jumped, ..
            } => {
                let us = by.num_microseconds().unwrap_or(if by < TimeDelta::zero() {
                    i64::MIN
                } else {
                    i64::MAX
                });
                let _ = offset_us.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                    Some(o.saturating_add(us))
                });
                jumped.notify_waiters();
                true
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
            match &*self.inner {
                Kind::System => {
                    let now = self.now();
                    if now >= t {
                        return;
                    }
                    let left = (t - now).to_std().unwrap_or(Duration::ZERO);
                    tokio::time::sleep(left.min(SYSTEM_RECHECK)).await
                }
                Kind::Scaled { jumped, .. } => {
                    // Listen for a jump before reading the clock, so one
                    // between the read and the sleep is not missed.
                    let stepped = jumped.notified();
                    tokio::pin!(stepped);
                    stepped.as_mut().enable();
                    let now = self.now();
                    if now >= t {
                        return;
                    }
                    let left = (t - now).to_std().unwrap_or(Duration::ZERO);
                    // Round up to the next microsecond of real time so the loop
                    // never spins on a sub-resolution remainder.
                    let real = self.real_duration(left) + Duration::from_micros(1);
                    tokio::select! {
                        _ = tokio::time::sleep(real) => {}
                        _ = stepped => {}
                    }
                }
            }
        }
    }

    /// A tokio deadline for clock instant `t`, for `tokio::time::timeout_at`
    /// and `sleep_until` in `select!` loops. Exact for virtual clocks until
    /// they are stepped; for the system clock it is computed from the
    /// current offset. Either way a later step does not move it.
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
    async fn jumps_step_every_clone_and_wake_waits() {
        let a = Clock::starting_at(t0());
        let b = a.clone();
        // A wait for 18:00 in progress when the clock steps 50 minutes on
        // at 17:05 ends at once, not after the 55 minutes it armed.
        let waiter = tokio::spawn({
            let b = b.clone();
            async move {
                b.sleep_until(t0() + TimeDelta::hours(1)).await;
                tokio::time::Instant::now()
            }
        });
        tokio::time::advance(Duration::from_secs(300)).await;
        let stepped_at = tokio::time::Instant::now();
        assert!(a.jump(TimeDelta::minutes(50)));
        assert_eq!(b.now(), t0() + TimeDelta::minutes(55));
        let woke = tokio::time::timeout(Duration::from_secs(301), waiter)
            .await
            .expect("the wait saw the step")
            .unwrap();
        // tokio timers round up to the millisecond.
        let waited = woke - stepped_at;
        assert!(waited >= Duration::from_secs(300), "{waited:?}");
        assert!(waited <= Duration::from_millis(300_001), "{waited:?}");
        let ms = TimeDelta::milliseconds(1);
        assert!(a.now() - (t0() + TimeDelta::hours(1)) <= ms);
        // Backward: a wait for an instant now further away lasts longer.
        assert!(a.jump(TimeDelta::minutes(-30)));
        assert!(b.now() - (t0() + TimeDelta::minutes(30)) <= ms);
        let before = tokio::time::Instant::now();
        b.sleep_until(t0() + TimeDelta::minutes(40)).await;
        assert!(tokio::time::Instant::now() - before >= Duration::from_secs(599));
        assert!(a.now() - (t0() + TimeDelta::minutes(40)) <= ms * 2);
        assert!(!Clock::system().jump(TimeDelta::seconds(1)));
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
