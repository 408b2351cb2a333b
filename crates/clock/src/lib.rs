//! The one source of wall-clock time for smartcharged and enode-sim.
//!
//! Every component that needs "now" or needs to wait for a wall-clock instant
//! asks a [`Clock`]. There are three kinds:
//!
//! - [`Clock::system`]: the real UTC clock of the host.
//! - [`Clock::starting_at`] / [`Clock::scaled`]: a virtual clock that starts at
//!   a chosen UTC instant and advances with tokio's monotonic time, optionally
//!   sped up. Under `tokio::time::pause()` it is fully virtual: a test can run
//!   a simulated day in seconds and both the daemon and the simulator, holding
//!   clones of one `Clock`, agree on the time.
//! - [`Clock::scaled_from_system`]: a sped-up virtual clock anchored to the
//!   host's clock, so that two *processes* (the daemon and enode-sim in the
//!   fleet benchmark) given the same [`VirtualClockSpec`] show the same time.
//!   It is a benchmark knob, never a production default.
//!
//! Because every wait goes through tokio timers, paused time drives the
//! scaled clock too; nothing here reads `std::time::Instant`.
//!
//! A virtual clock can also be stepped ([`Clock::jump`]), as NTP or a
//! suspend steps the host's clock, so tests can show what a wall-clock jump
//! does to the daemon. Waits in progress see the step at once (the system
//! clock sees one within 30 s).

use std::fmt;
use std::str::FromStr;
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
    /// `origin_virtual + (system_now - origin_system) * speed`.
    Anchored {
        /// The virtual instant shown when the system clock reads `origin_system`.
        origin_virtual: DateTime<Utc>,
        /// The system instant the two clocks are anchored at.
        origin_system: DateTime<Utc>,
        /// How many simulated seconds pass per system second.
        speed: f64,
        /// Reads the system clock (replaced in tests).
        system: SystemSource,
    },
}

/// Where an anchored clock reads system time: the host's clock, or a test's
/// stand-in (so the arithmetic is testable under paused tokio time).
#[derive(Clone)]
struct SystemSource(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl fmt::Debug for SystemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SystemSource")
    }
}

/// The host's UTC clock: the one sanctioned wall-clock read.
#[allow(clippy::disallowed_methods)]
fn host_now() -> DateTime<Utc> {
    Utc::now()
}

/// Waits for `d` of real time, whatever [`Clock`] runs: for the few waits
/// that are about real work in flight (the drain at shutdown), which takes
/// real time on a sped-up or paused clock too. The time is kept by a
/// thread of its own rather than a tokio timer, so a paused test clock
/// neither fires it early nor spins on it; the thread ends with the wait
/// or, detached, with the process.
pub async fn real_sleep(d: Duration) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("real sleep".into())
        .spawn(move || {
            std::thread::sleep(d);
            let _ = tx.send(());
        });
    // Without a thread to keep the time, no wait at all rather than one
    // for good.
    if spawned.is_ok() {
        let _ = rx.await;
    }
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

    /// A virtual clock shared by several processes: it shows
    /// `origin_virtual + (system_now - origin_system) * speed`, so every
    /// process built from the same three numbers agrees on the time without
    /// talking to the others. For benchmarks only (`--virtual-clock`).
    ///
    /// # Panics
    /// If `speed` is not a finite positive number (callers validate first).
    pub fn scaled_from_system(
        origin_virtual: DateTime<Utc>,
        origin_system: DateTime<Utc>,
        speed: f64,
    ) -> Self {
        Self::anchored(
            origin_virtual,
            origin_system,
            speed,
            SystemSource(Arc::new(host_now)),
        )
    }

    /// The clock a [`VirtualClockSpec`] describes.
    pub fn from_spec(spec: &VirtualClockSpec) -> Self {
        Self::scaled_from_system(spec.origin, spec.anchor, spec.speed)
    }

    fn anchored(
        origin_virtual: DateTime<Utc>,
        origin_system: DateTime<Utc>,
        speed: f64,
        system: SystemSource,
    ) -> Self {
        assert!(speed.is_finite() && speed > 0.0, "clock speed must be > 0");
        Clock {
            inner: Arc::new(Kind::Anchored {
                origin_virtual,
                origin_system,
                speed,
                system,
            }),
        }
    }

    /// How many simulated seconds pass per real second (1 for the system clock).
    pub fn speed(&self) -> f64 {
        match &*self.inner {
            Kind::System => 1.0,
            Kind::Scaled { speed, .. } | Kind::Anchored { speed, .. } => *speed,
        }
    }

    /// The current UTC time.
    pub fn now(&self) -> DateTime<Utc> {
        match &*self.inner {
            Kind::System => host_now(),
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
            Kind::Anchored {
                origin_virtual,
                origin_system,
                speed,
                system,
            } => {
                let real = (system.0() - *origin_system)
                    .num_microseconds()
                    .unwrap_or(i64::MAX) as f64;
                *origin_virtual + TimeDelta::microseconds((real * speed) as i64)
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
            // It follows the host's clock, which only the host steps.
            Kind::Anchored { .. } => false,
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
                Kind::System | Kind::Anchored { .. } => {
                    let now = self.now();
                    if now >= t {
                        return;
                    }
                    let left = (t - now).to_std().unwrap_or(Duration::ZERO);
                    // The anchored clock follows the host's clock too: both
                    // re-read it now and then, in real time, so a step of
                    // the host's clock cannot leave a timer far off.
                    let real = self.real_duration(left) + Duration::from_micros(1);
                    tokio::time::sleep(real.min(SYSTEM_RECHECK)).await
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

/// The three numbers two processes need to share one virtual clock, as one
/// command-line value: `ORIGIN@ANCHOR_MS*SPEED`, e.g.
/// `2024-03-04T12:00:00Z@1733000000000*120`: the clock shows `ORIGIN` when
/// the host's clock reads `ANCHOR_MS` (Unix milliseconds) and runs `SPEED`
/// times as fast. A benchmark knob: production runs on [`Clock::system`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VirtualClockSpec {
    /// The virtual instant at the anchor.
    pub origin: DateTime<Utc>,
    /// The host instant of the anchor (millisecond precision on the wire).
    pub anchor: DateTime<Utc>,
    /// Simulated seconds per real second.
    pub speed: f64,
}

impl FromStr for VirtualClockSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("virtual clock {s:?} is not ORIGIN@ANCHOR_MS*SPEED (e.g. 2024-03-04T12:00:00Z@1733000000000*120)")
        };
        let (origin, rest) = s.split_once('@').ok_or_else(bad)?;
        let (anchor, speed) = rest.split_once('*').ok_or_else(bad)?;
        let origin = DateTime::parse_from_rfc3339(origin.trim())
            .map_err(|e| format!("virtual clock origin {origin:?}: {e}"))?
            .to_utc();
        let anchor: i64 = anchor.trim().parse().map_err(|_| bad())?;
        let anchor = DateTime::from_timestamp_millis(anchor).ok_or_else(bad)?;
        let speed: f64 = speed.trim().parse().map_err(|_| bad())?;
        if !(speed.is_finite() && speed > 0.0 && speed <= 1e6) {
            return Err(format!("virtual clock speed {speed} must be in (0, 1e6]"));
        }
        Ok(VirtualClockSpec {
            origin,
            anchor,
            speed,
        })
    }
}

impl fmt::Display for VirtualClockSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}*{}",
            self.origin
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            self.anchor.timestamp_millis(),
            self.speed
        )
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

    /// A stand-in for the host's clock that follows paused tokio time from
    /// `at`, so an anchored clock can be tested without real waiting.
    fn fake_system(at: DateTime<Utc>) -> SystemSource {
        let start = Instant::now();
        SystemSource(Arc::new(move || {
            at + TimeDelta::from_std(start.elapsed()).expect("small")
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn anchored_clock_scales_system_time_from_its_anchor() {
        let sys = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        // Anchored 10 s in the system's past: 10 s * 60 = 10 min ahead of t0.
        let c = Clock::anchored(t0(), sys - TimeDelta::seconds(10), 60.0, fake_system(sys));
        assert_eq!(c.now(), t0() + TimeDelta::minutes(10));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(c.now(), t0() + TimeDelta::minutes(70));
        assert_eq!(c.speed(), 60.0);
        // An anchor in the future shows a time before the origin.
        let early = Clock::anchored(t0(), sys + TimeDelta::seconds(2), 30.0, fake_system(sys));
        assert_eq!(early.now(), t0() - TimeDelta::seconds(60));
    }

    #[tokio::test(start_paused = true)]
    async fn two_anchored_clocks_from_one_spec_agree() {
        let sys = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let a = Clock::anchored(t0(), sys, 120.0, fake_system(sys));
        tokio::time::advance(Duration::from_millis(1500)).await;
        // A second process starting later computes the same time.
        let b = Clock::anchored(
            t0(),
            sys,
            120.0,
            fake_system(sys + TimeDelta::milliseconds(1500)),
        );
        assert_eq!(a.now(), b.now());
        assert_eq!(a.now(), t0() + TimeDelta::minutes(3));
    }

    #[tokio::test(start_paused = true)]
    async fn anchored_sleep_until_waits_the_scaled_duration() {
        let sys = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let speed = 120.0;
        let c = Clock::anchored(t0(), sys, speed, fake_system(sys));
        let start = Instant::now();
        // Two hours of clock time: one minute of real time, waited in
        // SYSTEM_RECHECK slices.
        let target = t0() + TimeDelta::hours(2) + TimeDelta::microseconds(7);
        c.sleep_until(target).await;
        let late = c.now() - target;
        assert!(late >= TimeDelta::zero(), "woke early by {late}");
        assert!(
            late <= TimeDelta::microseconds((speed * 1000.0) as i64 + 1),
            "overslept by {late}"
        );
        let real = start.elapsed();
        assert!(
            (real.as_secs_f64() - 60.0).abs() < 0.01,
            "slept {real:?} of real time"
        );
        // instant_at agrees with the same scale.
        let at = c.instant_at(c.now() + TimeDelta::minutes(2));
        assert_eq!((at - Instant::now()).as_millis(), 1000);
    }

    #[test]
    fn specs_round_trip_and_bad_ones_are_refused() {
        let spec: VirtualClockSpec = "2024-03-04T12:00:00Z@1733000000000*120".parse().unwrap();
        assert_eq!(
            spec.origin,
            Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap()
        );
        assert_eq!(spec.anchor.timestamp_millis(), 1_733_000_000_000);
        assert_eq!(spec.speed, 120.0);
        assert_eq!(spec.to_string().parse::<VirtualClockSpec>(), Ok(spec));
        assert_eq!(spec.to_string(), "2024-03-04T12:00:00Z@1733000000000*120");
        for bad in [
            "",
            "2024-03-04T12:00:00Z",
            "2024-03-04T12:00:00Z@x*1",
            "yesterday@1733000000000*1",
            "2024-03-04T12:00:00Z@1733000000000*0",
            "2024-03-04T12:00:00Z@1733000000000*-3",
            "2024-03-04T12:00:00Z@1733000000000*NaN",
        ] {
            assert!(bad.parse::<VirtualClockSpec>().is_err(), "{bad:?} accepted");
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
