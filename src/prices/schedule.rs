//! When to fetch prices: at start (unless the cache already has tomorrow),
//! on a UTC cron tick, and at the provider's publication time, then every
//! `retry_every` with backoff until tomorrow's prices are there.
//!
//! The publication time is a local time in the market's zone (day-ahead
//! results appear around 12:45 CET), computed per day with chrono-tz and
//! waited for with a [`Clock`] timer. It is not a cron job: the cron
//! scheduler freezes the UTC offset when a job is created, so a local-time
//! job would fire an hour off after a DST change. The cron scheduler only
//! gets UTC expressions (6 fields, seconds first) and only sends ticks into
//! a channel; [`PriceFeed::run`] does the work, so tests can send the ticks.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use clock::Clock;
use tokio::sync::{mpsc, watch};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tracing::{debug, info, warn};

use super::cache::PriceCache;
use super::tariff::Tariff;
use super::tou::local_to_utc;
use super::{PriceCurve, PriceSource, Quote};

/// When the feed fetches and when it complains.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSettings {
    /// The zone of the market's delivery days and publication time.
    pub market_tz: Tz,
    /// Local time (market zone) when tomorrow's prices are usually out.
    pub publication: NaiveTime,
    /// Local time (market zone) on tomorrow's date when its delivery day
    /// ends; 00:00 means the midnight after tomorrow (Octopus Agile: 23:00).
    pub tomorrow_ends: NaiveTime,
    /// First retry interval after a failure or while tomorrow is missing.
    pub retry_every: Duration,
    /// Longest retry interval the backoff grows to.
    pub retry_max: Duration,
    /// The user's zone, for the evening warning.
    pub tz: Tz,
    /// Local time (user's zone) after which a missing tomorrow is logged as
    /// a warning, once per day.
    pub warn_after: NaiveTime,
}

/// Decides fetch times for one source and publishes the consumer curve.
pub struct PriceFeed {
    /// Where prices come from.
    source: Arc<dyn PriceSource>,
    /// Turns quotes into consumer prices.
    tariff: Tariff,
    /// Where the last good quote is kept.
    cache: Arc<dyn PriceCache>,
    /// The one source of wall-clock time.
    clock: Clock,
    /// When to fetch.
    settings: FeedSettings,
    /// The quote in use (cached or fetched).
    quote: Option<Quote>,
    /// Where the current curve is published.
    tx: watch::Sender<Option<Arc<PriceCurve>>>,
    /// Retry intervals while a fetch fails or tomorrow is missing.
    backoff: ExponentialBackoff,
    /// Instant of the pending retry, if any.
    retry_at: Option<DateTime<Utc>>,
    /// Instant of the next poll of a source that asks to be polled.
    poll_at: Option<DateTime<Utc>>,
    /// The date whose missing tomorrow has been warned about.
    warned_on: Option<NaiveDate>,
    /// Failing fetches, logged once per episode rather than per retry.
    outages: crate::outage::Outages,
    /// A curve without future prices (a stale price file), logged once.
    stale: crate::outage::Outages,
    /// Where fetches are counted.
    metrics: Arc<crate::metrics::Metrics>,
}

impl PriceFeed {
    /// A feed and the receiver of its curve (`None` until prices are known).
    pub fn new(
        source: Arc<dyn PriceSource>,
        tariff: Tariff,
        cache: Arc<dyn PriceCache>,
        clock: Clock,
        settings: FeedSettings,
    ) -> (Self, watch::Receiver<Option<Arc<PriceCurve>>>) {
        let (tx, rx) = watch::channel(None);
        let backoff = ExponentialBackoff {
            initial_interval: settings.retry_every,
            current_interval: settings.retry_every,
            randomization_factor: 0.1,
            multiplier: 1.5,
            max_interval: settings.retry_max,
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        };
        let feed = PriceFeed {
            source,
            tariff,
            cache,
            clock,
            settings,
            quote: None,
            tx,
            backoff,
            retry_at: None,
            poll_at: None,
            warned_on: None,
            outages: crate::outage::Outages::new("price fetch"),
            stale: crate::outage::Outages::new("price curve"),
            metrics: Arc::default(),
        };
        (feed, rx)
    }

    /// Counts fetches in `metrics` (the daemon's) rather than in a private set.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// See [`market_days`].
    pub fn market_days(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
        market_days(&self.settings, now)
    }

    /// Today's publication instant (it may be in the past).
    pub fn publication_today(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let tz = &self.settings.market_tz;
        local_to_utc(
            tz,
            now.with_timezone(tz).date_naive(),
            self.settings.publication,
        )
    }

    /// The first publication instant after `now`.
    pub fn next_publication(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = self.publication_today(now);
        if today > now {
            return today;
        }
        let tz = &self.settings.market_tz;
        let tomorrow = now.with_timezone(tz).date_naive() + TimeDelta::days(1);
        local_to_utc(tz, tomorrow, self.settings.publication)
    }

    /// Whether the quote in use reaches the end of tomorrow's delivery day.
    pub fn has_tomorrow(&self, now: DateTime<Utc>) -> bool {
        let (_, _, end) = self.market_days(now);
        self.quote
            .as_ref()
            .and_then(Quote::end)
            .is_some_and(|e| e >= end)
    }

    /// Today's warning instant in the user's zone.
    fn warn_today(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let tz = &self.settings.tz;
        local_to_utc(
            tz,
            now.with_timezone(tz).date_naive(),
            self.settings.warn_after,
        )
    }

    /// Publishes the quote in use as a consumer curve.
    fn publish(&self) {
        if let Some(q) = &self.quote {
            let curve = Arc::new(self.tariff.apply(q));
            self.tx.send_if_modified(|cur| {
                let changed = cur.as_deref() != Some(&*curve);
                if changed {
                    *cur = Some(curve.clone());
                }
                changed
            });
        }
    }

    /// Fetches once and updates the quote, the cache and the retry plan.
    /// A failure keeps the quote in use.
    pub async fn fetch(&mut self, reason: &'static str) {
        let now = self.clock.now();
        let (today, _, end) = self.market_days(now);
        let id = self.source.id();
        debug!(source = %id, reason, "fetching prices");
        let fetched = self.source.fetch(today, end).await;
        self.metrics.price_fetch(fetched.is_ok(), now, &id);
        match fetched {
            Ok(fresh) => {
                self.outages.succeeded(now);
                let keep_after = now - TimeDelta::days(1);
                let merged = match &self.quote {
                    Some(old) => old.merged_with(&fresh, keep_after),
                    None => fresh,
                };
                let changed = self.quote.as_ref() != Some(&merged);
                if merged.end().is_none_or(|e| e <= now) {
                    self.stale.failed(
                        "no future prices",
                        now,
                        &format_args!(
                            "{id} has no prices from now on; plans use forecasts from past prices"
                        ),
                    );
                } else {
                    self.stale.succeeded(now);
                }
                self.quote = Some(merged);
                if changed {
                    if let Err(e) = self.cache.save(&id, self.quote.as_ref().expect("just set")) {
                        warn!(source = %id, error = %e, "cannot store prices");
                    }
                    info!(source = %id, until = ?self.quote.as_ref().and_then(Quote::end), reason, "prices updated");
                    self.publish();
                }
                if self.has_tomorrow(now) {
                    self.retry_at = None;
                    self.backoff.reset();
                } else if now >= self.publication_today(now) {
                    self.schedule_retry(now);
                } else {
                    // A new market day: tomorrow is not due before its
                    // publication time, and its retries start afresh.
                    self.retry_at = None;
                    self.backoff.reset();
                }
            }
            Err(e) if e.is_transient() || self.quote.is_none() => {
                self.outages.failed(
                    "fetch",
                    now,
                    &format_args!("{id}: {e}; keeping the prices known so far"),
                );
                debug!(source = %id, error = %e, reason, "price fetch failed; retrying with backoff");
                self.schedule_retry(now);
            }
            Err(e) => {
                self.outages.failed(
                    "fetch",
                    now,
                    &format_args!("{id}: {e}; trying again at the next tick"),
                );
                debug!(source = %id, error = %e, reason, "price fetch failed");
                self.retry_at = None;
            }
        }
        if let Some(every) = self.source.poll_every() {
            self.poll_at = Some(now + TimeDelta::from_std(every).unwrap_or(TimeDelta::hours(1)));
        }
    }

    fn schedule_retry(&mut self, now: DateTime<Utc>) {
        let wait = self
            .backoff
            .next_backoff()
            .unwrap_or(self.settings.retry_max);
        self.retry_at = Some(now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::minutes(10)));
    }

    /// Takes the stored quote of this source into use and publishes it.
    pub fn load_cached(&mut self) {
        let id = self.source.id();
        match self.cache.load(&id) {
            Ok(q) => self.quote = q,
            Err(e) => warn!(source = %id, error = %e, "cannot read stored prices"),
        }
        self.publish();
    }

    /// Runs until `shutdown` resolves: loads the cache, fetches if the cache
    /// lacks tomorrow, then fetches on each tick from `ticks`, at each
    /// publication time and on each retry.
    pub async fn run(mut self, mut ticks: mpsc::Receiver<()>, shutdown: impl Future<Output = ()>) {
        let id = self.source.id();
        self.load_cached();
        if self.has_tomorrow(self.clock.now()) {
            info!(source = %id, "stored prices cover tomorrow; not fetching at start");
        } else {
            self.fetch("start").await;
        }
        tokio::pin!(shutdown);
        let mut ticks_open = true;
        loop {
            let now = self.clock.now();
            let missing = !self.has_tomorrow(now);
            let warn_at = self.warn_today(now);
            let today_local = now.with_timezone(&self.settings.tz).date_naive();
            let warn_pending = missing && self.warned_on != Some(today_local);
            let pub_at = self.next_publication(now);
            let mut next = pub_at;
            for t in [self.retry_at, self.poll_at, warn_pending.then_some(warn_at)]
                .into_iter()
                .flatten()
            {
                next = next.min(t.max(now));
            }
            tokio::select! {
                _ = &mut shutdown => break,
                tick = ticks.recv(), if ticks_open => match tick {
                    Some(()) if missing || self.source.poll_every().is_some() => self.fetch("tick").await,
                    Some(()) => {}
                    None => ticks_open = false,
                },
                _ = self.clock.sleep_until(next) => {
                    let now = self.clock.now();
                    if warn_pending && now >= warn_at && !self.has_tomorrow(now) {
                        warn!(source = %id, "prices for tomorrow are still missing");
                        self.warned_on = Some(today_local);
                    }
                    let due = |t: Option<DateTime<Utc>>| t.is_some_and(|t| t <= now);
                    if due(self.retry_at) {
                        self.fetch("retry").await;
                    } else if due(self.poll_at) {
                        self.fetch("poll").await;
                    } else if now >= pub_at && !self.has_tomorrow(now) {
                        self.fetch("publication").await;
                    }
                }
            }
        }
    }
}

/// The market day containing `now`: its start, the start of tomorrow, and
/// when tomorrow's prices end. This is the range every fetch asks for.
pub fn market_days(
    settings: &FeedSettings,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
    let tz = &settings.market_tz;
    let today = now.with_timezone(tz).date_naive();
    let tomorrow = today + TimeDelta::days(1);
    let ends = settings.tomorrow_ends;
    let end = if ends == NaiveTime::MIN {
        local_to_utc(tz, tomorrow + TimeDelta::days(1), ends)
    } else {
        local_to_utc(tz, tomorrow, ends)
    };
    (
        local_to_utc(tz, today, NaiveTime::MIN),
        local_to_utc(tz, tomorrow, NaiveTime::MIN),
        end,
    )
}

/// Starts a cron scheduler that sends a tick on `expr` (UTC, 6 fields,
/// seconds first), and the receiver of the ticks. Keep the scheduler alive
/// as long as ticks are wanted; drop or shut it down to stop them.
pub async fn cron_ticks(
    expr: &str,
) -> Result<(JobScheduler, mpsc::Receiver<()>), JobSchedulerError> {
    let (tx, rx) = mpsc::channel(1);
    let sched = JobScheduler::new().await?;
    let job = Job::new_async(expr, move |_, _| {
        let tx = tx.clone();
        Box::pin(async move {
            // A full channel means a tick is already pending: skip this one.
            let _ = tx.try_send(());
        })
    })?;
    sched.add(job).await?;
    sched.start().await?;
    Ok((sched, rx))
}

/// Checks a cron expression as [`cron_ticks`] will read it: six fields,
/// seconds first, UTC. Returns the scheduler's complaint otherwise.
pub fn check_cron(expr: &str) -> Result<(), String> {
    if expr.split_whitespace().count() != 6 {
        return Err(
            "expected 6 fields, seconds first (e.g. `0 0 * * * *` for every hour, UTC)".into(),
        );
    }
    // The scheduler's parser accepts an empty list item (`5,,6`, a lone
    // `,`) and gives it a meaning of its own; refuse the typo instead.
    if expr
        .split_whitespace()
        .any(|field| field.split(',').any(str::is_empty))
    {
        return Err("a list has an empty item (`,` with nothing before or after it)".into());
    }
    Job::new_async(expr, |_, _| Box::pin(async {}))
        .map(|_| ())
        .map_err(|e| format!("invalid cron expression: {e}"))
}

#[cfg(test)]
mod cron_tests {
    use super::check_cron;

    #[test]
    fn cron_with_an_empty_list_item_is_refused() {
        for expr in [
            "0 5 , * * *",
            "0 5,,6 * * * *",
            "0 5, * * * *",
            "0 ,5 * * * *",
        ] {
            let why = check_cron(expr).expect_err(expr);
            assert!(why.contains("empty item"), "{expr}: {why}");
        }
        check_cron("0 5,35 * * * *").expect("a list of two minutes");
        check_cron("0 5 * * * *").expect("the default");
    }
}
