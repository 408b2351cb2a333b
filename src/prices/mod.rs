//! Price sources and the tariff formula, producing a [`PriceCurve`]: the
//! price the user really pays per kWh, in UTC slots.
//!
//! A provider module knows one API's wire format and turns a response into a
//! [`Quote`] (spot €/MWh or consumer price per kWh, as the provider gives it).
//! [`tariff::Tariff`] turns a quote into a curve. [`schedule::PriceFeed`]
//! decides when to fetch and keeps the last good quote in a
//! [`cache::PriceCache`], so an outage falls back to what is known.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

pub mod awattar;
pub mod cache;
pub mod chart;
pub mod config;
pub mod energidataservice;
pub mod entsoe;
pub mod error;
pub mod file;
pub mod http;
pub mod nordpool;
pub mod octopus;
pub mod schedule;
pub mod tariff;
pub mod tibber;
pub mod tou;

pub use error::SourceError;

/// One priced interval `[start, end)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// First instant of the slot.
    pub start: DateTime<Utc>,
    /// First instant after the slot.
    pub end: DateTime<Utc>,
    /// Price in the unit of the curve or quote that holds the slot.
    pub price: f64,
}

/// What unit a provider's numbers are in, which decides which parts of the
/// tariff formula apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Wholesale day-ahead price per MWh: the whole formula applies.
    SpotPerMwh,
    /// What the consumer pays per kWh (Tibber, Octopus, a fixed tariff):
    /// multiplier, markup and VAT are already in it; only a grid fee is added.
    ConsumerPerKwh,
}

/// Prices as a provider gave them, before the tariff formula. This is what
/// the cache stores, so a tariff change applies without refetching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// Unit of the prices.
    pub basis: Basis,
    /// ISO 4217 code of the prices (EUR, SEK, GBP, ...).
    pub currency: String,
    /// Sorted, non-overlapping slots.
    pub slots: Vec<Slot>,
}

impl Quote {
    /// A quote from slots in any order; overlaps and empty slots are errors
    /// because they mean the parser misread the document.
    pub fn new(
        basis: Basis,
        currency: impl Into<String>,
        slots: Vec<Slot>,
    ) -> Result<Self, SourceError> {
        let slots = normalize(slots).map_err(SourceError::Malformed)?;
        Ok(Quote {
            basis,
            currency: currency.into(),
            slots,
        })
    }

    /// The end of the last slot, if any.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.slots.last().map(|s| s.end)
    }

    /// Combines an older quote with a newer one: the newer wins where both
    /// have a slot, older slots outside the new range are kept (so today's
    /// morning survives a fetch that returns only the afternoon and tomorrow),
    /// and slots that ended before `keep_after` are dropped.
    pub fn merged_with(&self, newer: &Quote, keep_after: DateTime<Utc>) -> Quote {
        if self.basis != newer.basis || self.currency != newer.currency {
            return newer.clone();
        }
        let (from, to) = match (newer.slots.first(), newer.slots.last()) {
            (Some(f), Some(l)) => (f.start, l.end),
            _ => return self.clone(),
        };
        let mut slots: Vec<Slot> = self
            .slots
            .iter()
            .filter(|s| s.end <= from || s.start >= to)
            .copied()
            .chain(newer.slots.iter().copied())
            .filter(|s| s.end > keep_after)
            .collect();
        slots.sort_by_key(|s| s.start);
        Quote {
            basis: newer.basis,
            currency: newer.currency.clone(),
            slots,
        }
    }
}

/// The consumer price curve the planner works with: UTC slots `[start, end)`
/// with the price per kWh, sorted and non-overlapping. Slot lengths may be
/// mixed (hourly before the 15-minute day-ahead market, 15 minutes after),
/// and there may be gaps where nothing is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceCurve {
    /// ISO 4217 code of the prices, shown in output.
    pub currency: String,
    /// Sorted, non-overlapping slots with price per kWh.
    slots: Vec<Slot>,
}

impl PriceCurve {
    /// A curve from slots in any order; overlapping or empty slots are
    /// rejected with a message naming the first offender.
    pub fn new(currency: impl Into<String>, slots: Vec<Slot>) -> Result<Self, String> {
        Ok(PriceCurve {
            currency: currency.into(),
            slots: normalize(slots)?,
        })
    }

    /// The slots, sorted by start.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The first instant covered, if any.
    pub fn start(&self) -> Option<DateTime<Utc>> {
        self.slots.first().map(|s| s.start)
    }

    /// The end of the last slot, if any.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.slots.last().map(|s| s.end)
    }

    /// The price per kWh at `t`, if a slot covers it.
    pub fn price_at(&self, t: DateTime<Utc>) -> Option<f64> {
        let i = self.slots.partition_point(|s| s.end <= t);
        self.slots.get(i).filter(|s| s.start <= t).map(|s| s.price)
    }

    /// The slots that end after `t`: what is still ahead.
    pub fn from(&self, t: DateTime<Utc>) -> &[Slot] {
        let i = self.slots.partition_point(|s| s.end <= t);
        &self.slots[i..]
    }

    /// Whether the price at `t` is among the cheapest `share` (0-1) of the
    /// known time in `[t, t + horizon)`, weighing slots by their length.
    /// `false` when no slot covers `t`.
    ///
    /// The fleet polls an unplugged vehicle that waits for a command more
    /// often in such hours: plugged in then, it is best charged at once,
    /// and every minute until a poll sees it moves charging to a dearer
    /// hour.
    pub fn is_cheap_at(&self, t: DateTime<Utc>, horizon: TimeDelta, share: f64) -> bool {
        let Some(now) = self.price_at(t) else {
            return false;
        };
        let end = t + horizon;
        let (mut cheaper, mut total) = (0i64, 0i64);
        for s in self.from(t).iter().take_while(|s| s.start < end) {
            let secs = (s.end.min(end) - s.start.max(t)).num_seconds();
            total += secs;
            if s.price < now {
                cheaper += secs;
            }
        }
        total > 0 && (cheaper as f64) < share * total as f64
    }

    /// The first slot start in `(after, until]` at which
    /// [`PriceCurve::is_cheap_at`] holds: where a dear stretch ends, so the
    /// fleet's sparse polls of a waiting vehicle resume their cheap-hour
    /// pace on time.
    pub fn next_cheap_start(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        horizon: TimeDelta,
        share: f64,
    ) -> Option<DateTime<Utc>> {
        self.from(after)
            .iter()
            .map(|s| s.start)
            .filter(|t| *t > after)
            .take_while(|t| *t <= until)
            .find(|t| self.is_cheap_at(*t, horizon, share))
    }

    /// The start of the cheapest run of contiguous slots of at least
    /// `length` among those ending after `after`, with its mean price
    /// weighted by time. `None` when no contiguous run is long enough.
    pub fn cheapest_window(
        &self,
        after: DateTime<Utc>,
        length: TimeDelta,
    ) -> Option<(DateTime<Utc>, f64)> {
        let slots = self.from(after);
        let mut best: Option<(DateTime<Utc>, f64)> = None;
        for i in 0..slots.len() {
            let start = slots[i].start.max(after);
            let (mut cost, mut covered) = (0.0, TimeDelta::zero());
            let mut prev_end = start;
            for s in &slots[i..] {
                if s.start > prev_end {
                    break;
                }
                let take = (s.end - prev_end.max(s.start)).min(length - covered);
                cost += s.price * take.num_seconds() as f64;
                covered += take;
                prev_end = s.end;
                if covered >= length {
                    let mean = cost / length.num_seconds() as f64;
                    if best.is_none_or(|(_, b)| mean < b) {
                        best = Some((start, mean));
                    }
                    break;
                }
            }
        }
        best
    }
}

/// Sorts slots and checks that each is non-empty, at most
/// [`PRICE_SLOT_MAX`](crate::limits::PRICE_SLOT_MAX) long, and that none
/// overlap and all lie within [`PRICE_SPAN_MAX`](crate::limits::PRICE_SPAN_MAX).
fn normalize(mut slots: Vec<Slot>) -> Result<Vec<Slot>, String> {
    use crate::limits::{PRICE_SLOT_MAX, PRICE_SPAN_MAX};
    slots.sort_by_key(|s| s.start);
    for s in &slots {
        if s.end <= s.start {
            return Err(format!("empty slot at {}", s.start));
        }
        if s.end - s.start > PRICE_SLOT_MAX {
            return Err(format!(
                "slot at {} lasts longer than {} days",
                s.start,
                PRICE_SLOT_MAX.num_days()
            ));
        }
        if !s.price.is_finite() {
            return Err(format!("price at {} is not a number", s.start));
        }
    }
    if let Some(w) = slots.windows(2).find(|w| w[1].start < w[0].end) {
        return Err(format!(
            "slots overlap: {}..{} and {}..{}",
            w[0].start, w[0].end, w[1].start, w[1].end
        ));
    }
    if let (Some(first), Some(last)) = (slots.first(), slots.last()) {
        if last.end - first.start > PRICE_SPAN_MAX {
            return Err(format!(
                "slots span {}..{}, more than {} days",
                first.start,
                last.end,
                PRICE_SPAN_MAX.num_days()
            ));
        }
    }
    Ok(slots)
}

/// Turns a list of `(start, price)` into slots whose end is the next start,
/// the last one lasting as long as the shortest step seen (or `default_step`
/// when there is a single point). Steps longer than `default_step` are gaps,
/// not long slots, so a missing hour never stretches its neighbour.
pub fn slots_from_starts(
    mut points: Vec<(DateTime<Utc>, f64)>,
    default_step: TimeDelta,
) -> Vec<Slot> {
    points.sort_by_key(|p| p.0);
    points.dedup_by_key(|p| p.0);
    let step = points
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .min()
        .unwrap_or(default_step)
        .min(default_step);
    points
        .iter()
        .enumerate()
        .map(|(i, &(start, price))| {
            let end = match points.get(i + 1) {
                Some(&(next, _)) if next - start <= default_step => next,
                _ => start + step,
            };
            Slot { start, end, price }
        })
        .collect()
}

/// The boxed future a [`PriceSource`] returns, so sources can be used as
/// trait objects chosen from the config at run time.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A provider of prices. Implementations do one request (or a few) per call,
/// with a timeout, and never retry: retrying is the schedule's decision.
pub trait PriceSource: Send + Sync {
    /// A stable name for logs and the cache key, e.g. `entsoe:10YAT-APG------L`.
    fn id(&self) -> String;

    /// Fetches the prices for `[from, to)` (as much as is published).
    fn fetch(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Quote, SourceError>>;

    /// How often to look again regardless of the publication schedule
    /// (a local file that may change at any time), if at all.
    fn poll_every(&self) -> Option<std::time::Duration> {
        None
    }
}
