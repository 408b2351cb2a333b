//! The fetch schedule under paused tokio time and a virtual clock: fetch at
//! start, at the local publication time (also across DST), retries with
//! backoff until tomorrow is there, ticks, the evening warning, and no
//! refetch at start when the store already has tomorrow.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use clock::Clock;
use smartcharged::prices::cache::{MemoryCache, PriceCache};
use smartcharged::prices::schedule::{
    check_cron, cron_ticks, market_days, FeedSettings, PriceFeed,
};
use smartcharged::prices::tariff::Tariff;
use smartcharged::prices::{Basis, BoxFuture, PriceSource, Quote, Slot, SourceError};
use tokio::sync::{mpsc, oneshot};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A source whose tomorrow appears `tomorrow_after` into the market day.
struct Mock {
    clock: Clock,
    calls: Mutex<Vec<DateTime<Utc>>>,
    tomorrow_after: Option<TimeDelta>,
    fail_first: Mutex<usize>,
}

impl Mock {
    fn new(clock: &Clock, tomorrow_after: Option<TimeDelta>) -> Arc<Self> {
        Arc::new(Mock {
            clock: clock.clone(),
            calls: Mutex::default(),
            tomorrow_after,
            fail_first: Mutex::new(0),
        })
    }

    fn calls(&self) -> Vec<DateTime<Utc>> {
        self.calls.lock().unwrap().clone()
    }
}

fn hourly(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Slot> {
    let mut out = Vec::new();
    let mut s = from;
    while s < to {
        out.push(Slot {
            start: s,
            end: s + TimeDelta::hours(1),
            price: 100.0,
        });
        s += TimeDelta::hours(1);
    }
    out
}

impl PriceSource for Mock {
    fn id(&self) -> String {
        "mock".into()
    }

    fn fetch(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Quote, SourceError>> {
        let now = self.clock.now();
        self.calls.lock().unwrap().push(now);
        let mut fail = self.fail_first.lock().unwrap();
        let result = if *fail > 0 {
            *fail -= 1;
            Err(SourceError::Unavailable("http 500: oops".into()))
        } else {
            let end = match self.tomorrow_after {
                Some(d) if now >= from + d => to,
                _ => from + TimeDelta::hours(24),
            };
            Quote::new(Basis::SpotPerMwh, "EUR", hourly(from, end.min(to)))
        };
        Box::pin(async move { result })
    }
}

fn settings() -> FeedSettings {
    FeedSettings {
        market_tz: chrono_tz::Europe::Berlin,
        publication: NaiveTime::from_hms_opt(12, 45, 0).unwrap(),
        tomorrow_ends: NaiveTime::MIN,
        retry_every: Duration::from_secs(600),
        retry_max: Duration::from_secs(3600),
        tz: chrono_tz::Europe::Berlin,
        warn_after: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
    }
}

/// Runs a feed from `start` for `hours` of virtual time; returns the cache.
async fn run_feed(
    clock: &Clock,
    source: Arc<Mock>,
    cache: Arc<MemoryCache>,
    hours: u64,
    ticks_at: &[u64],
) -> Option<Arc<smartcharged::prices::PriceCurve>> {
    let (feed, rx) = PriceFeed::new(
        source,
        Tariff::spot_only("EUR"),
        cache,
        clock.clone(),
        settings(),
    );
    let (tick_tx, tick_rx) = mpsc::channel(1);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(feed.run(tick_rx, async move {
        let _ = stop_rx.await;
    }));
    let mut elapsed = 0;
    for &at in ticks_at {
        tokio::time::sleep(Duration::from_secs((at - elapsed) * 60)).await;
        elapsed = at;
        tick_tx.send(()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(hours * 3600 - elapsed * 60)).await;
    stop_tx.send(()).unwrap();
    task.await.unwrap();
    let curve = rx.borrow().clone();
    curve
}

fn minutes(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_seconds() as f64 / 60.0
}

#[tokio::test(start_paused = true)]
async fn fetches_at_start_and_publication_then_retries_until_tomorrow() {
    let start = t("2024-10-05T08:00:00Z");
    let clock = Clock::starting_at(start);
    // Market day starts 2024-10-04T22:00Z; tomorrow appears at 11:20Z.
    let source = Mock::new(&clock, Some(TimeDelta::minutes(13 * 60 + 20)));
    let cache = Arc::new(MemoryCache::new());
    let curve = run_feed(&clock, source.clone(), cache.clone(), 27, &[])
        .await
        .unwrap();
    let calls = source.calls();
    assert!(minutes(start, calls[0]).abs() < 0.01, "{calls:?}");
    // 12:45 CEST.
    assert!(
        minutes(t("2024-10-05T10:45:00Z"), calls[1]).abs() < 0.01,
        "{calls:?}"
    );
    // Retries: ~10 min, then growing (backoff x1.5 with 10 % jitter).
    let gap1 = minutes(calls[1], calls[2]);
    let gap2 = minutes(calls[2], calls[3]);
    assert!((9.0..=11.0).contains(&gap1), "{calls:?}");
    assert!((13.5..=16.5).contains(&gap2), "{calls:?}");
    let got = calls
        .iter()
        .position(|&c| c >= t("2024-10-05T11:20:00Z"))
        .unwrap();
    // Nothing more until the next publication, 2024-10-06 12:45 CEST.
    assert!(
        minutes(t("2024-10-06T10:45:00Z"), calls[got + 1]).abs() < 0.01,
        "{calls:?}"
    );
    assert!(calls[got] < t("2024-10-05T12:00:00Z"), "{calls:?}");
    // The curve and the cache hold tomorrow (up to 2024-10-06T22:00Z).
    let stored = cache.load("mock").unwrap().unwrap();
    assert!(stored.end().unwrap() >= t("2024-10-06T22:00:00Z"));
    assert_eq!(curve.price_at(t("2024-10-06T21:30:00Z")), Some(0.1));
}

#[tokio::test(start_paused = true)]
async fn publication_time_is_local_across_both_dst_changes() {
    for (start, expected) in [
        // Fall back on 2024-10-27: 12:45 is 10:45Z before, 11:45Z after.
        (
            "2024-10-25T20:00:00Z",
            [
                "2024-10-26T10:45:00Z",
                "2024-10-27T11:45:00Z",
                "2024-10-28T11:45:00Z",
            ],
        ),
        // Spring forward on 2024-03-31: 11:45Z before, 10:45Z after.
        (
            "2024-03-29T20:00:00Z",
            [
                "2024-03-30T11:45:00Z",
                "2024-03-31T10:45:00Z",
                "2024-04-01T10:45:00Z",
            ],
        ),
    ] {
        let start = t(start);
        let clock = Clock::starting_at(start);
        let source = Mock::new(&clock, Some(TimeDelta::zero()));
        // The store already has tomorrow: no fetch at start.
        let cache = Arc::new(MemoryCache::new());
        let (from, _, end) = market_days(&settings(), start);
        cache
            .save(
                "mock",
                &Quote::new(Basis::SpotPerMwh, "EUR", hourly(from, end)).unwrap(),
            )
            .unwrap();
        run_feed(&clock, source.clone(), cache, 64, &[])
            .await
            .unwrap();
        let calls = source.calls();
        assert_eq!(calls.len(), 3, "{calls:?}");
        for (c, e) in calls.iter().zip(expected) {
            assert!(minutes(t(e), *c).abs() < 0.01, "{calls:?} vs {expected:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn failures_retry_with_backoff_and_keep_the_known_curve() {
    let start = t("2024-06-14T13:00:00Z");
    let clock = Clock::starting_at(start);
    let source = Mock::new(&clock, Some(TimeDelta::zero()));
    *source.fail_first.lock().unwrap() = 3;
    let cache = Arc::new(MemoryCache::new());
    let (from, tomorrow, _) = market_days(&settings(), start);
    // Known: today only.
    cache
        .save(
            "mock",
            &Quote::new(Basis::SpotPerMwh, "EUR", hourly(from, tomorrow)).unwrap(),
        )
        .unwrap();
    let curve = run_feed(&clock, source.clone(), cache, 2, &[])
        .await
        .unwrap();
    let calls = source.calls();
    // start (fails), ~10 min, ~15 min, ~22.5 min later (succeeds), then quiet.
    assert_eq!(calls.len(), 4, "{calls:?}");
    let gaps: Vec<f64> = calls.windows(2).map(|w| minutes(w[0], w[1])).collect();
    assert!(
        (9.0..=11.0).contains(&gaps[0])
            && (13.5..=16.5).contains(&gaps[1])
            && (20.25..=24.75).contains(&gaps[2]),
        "{gaps:?}"
    );
    assert!(curve.end().unwrap() > tomorrow);
}

#[tokio::test(start_paused = true)]
async fn ticks_fetch_only_while_tomorrow_is_missing() {
    let start = t("2024-06-14T06:00:00Z");
    let clock = Clock::starting_at(start);
    // Tomorrow appears at 09:00Z, before the publication time (10:45Z).
    let source = Mock::new(&clock, Some(TimeDelta::hours(11)));
    run_feed(
        &clock,
        source.clone(),
        Arc::new(MemoryCache::new()),
        4,
        &[60, 120, 185, 200],
    )
    .await;
    let calls = source.calls();
    let at: Vec<f64> = calls.iter().map(|&c| minutes(start, c).round()).collect();
    // start, tick at 07:00, 08:00, 09:05 (gets tomorrow); the 09:20 tick is skipped.
    assert_eq!(at, vec![0.0, 60.0, 120.0, 185.0]);
}

/// Collects log output for the evening-warning test.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn warns_once_per_evening_while_tomorrow_is_missing() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let start = t("2024-06-14T08:00:00Z");
    let clock = Clock::starting_at(start);
    let source = Mock::new(&clock, None);
    run_feed(
        &clock,
        source.clone(),
        Arc::new(MemoryCache::new()),
        40,
        &[],
    )
    .await;
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings = text
        .matches("prices for tomorrow are still missing")
        .count();
    // Evenings of 2024-06-14 and 2024-06-15 (18:00 CEST = 16:00Z; run ends 2024-06-16T00:00Z).
    assert_eq!(warnings, 2, "{text}");
    // In the afternoon: retries never faster than every 9 minutes (10 with
    // jitter), capped near an hour; overnight none, after the retry that
    // was pending at midnight.
    let calls = source.calls();
    let afternoon: Vec<_> = calls
        .iter()
        .copied()
        .filter(|&c| c >= t("2024-06-14T10:45:00Z") && c < t("2024-06-14T22:00:00Z"))
        .collect();
    let gaps: Vec<f64> = afternoon.windows(2).map(|w| minutes(w[0], w[1])).collect();
    assert!(
        gaps.len() > 10 && gaps.iter().all(|g| (9.0..=66.0).contains(g)),
        "{gaps:?}"
    );
    let night = calls
        .iter()
        .filter(|&&c| c > t("2024-06-14T23:10:00Z") && c < t("2024-06-15T10:45:00Z"))
        .count();
    assert_eq!(night, 0, "{calls:?}");
}

#[test]
fn cron_expressions_are_utc_with_seconds() {
    assert!(check_cron("0 5 * * * *").is_ok());
    assert!(check_cron("5 * * * *").unwrap_err().contains("6 fields"));
    assert!(check_cron("0 61 * * * *").is_err());
}

#[tokio::test]
async fn cron_ticks_starts_and_stops() {
    let (mut sched, _rx) = cron_ticks("0 5 * * * *").await.unwrap();
    sched.shutdown().await.unwrap();
}
