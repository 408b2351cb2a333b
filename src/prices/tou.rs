//! Time-of-use windows in local time: the `tou` price source (a fixed
//! tariff such as night 0.21, day 0.34) and the time-of-use grid fee of the
//! tariff formula.
//!
//! Windows are local wall-clock times in an IANA zone, so a 22:00 window
//! starts at 22:00 on both sides of a DST change. Their UTC edges are
//! computed per day with chrono-tz: a spring-forward day has 23 hours, a
//! fall-back day 25, and an edge inside the skipped hour moves later by the
//! length of the gap.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use super::{Basis, BoxFuture, PriceSource, Quote, Slot, SourceError};

/// One window: on the given weekdays, from `from` to `to` local time. A
/// window with `to <= from` runs past midnight into the next day (it belongs
/// to the day it starts on).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Weekdays on which the window starts; all seven when empty.
    pub days: Vec<Weekday>,
    /// Local start time.
    pub from: NaiveTime,
    /// Local end time (exclusive); `<= from` wraps past midnight.
    pub to: NaiveTime,
    /// Price per kWh inside the window.
    pub price: f64,
}

impl Window {
    /// Whether the window started on `day` and is open at `time` of `day`,
    /// or started the day before and wraps into `day`.
    fn contains(&self, day: NaiveDate, time: NaiveTime) -> bool {
        let on = |d: NaiveDate| self.days.is_empty() || self.days.contains(&d.weekday());
        if self.from < self.to {
            on(day) && self.from <= time && time < self.to
        } else {
            let yesterday = day.pred_opt().unwrap_or(day);
            (on(day) && time >= self.from) || (on(yesterday) && time < self.to)
        }
    }
}

/// A set of windows with a fallback price, in one time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct TouSchedule {
    /// Zone the window times are in.
    pub tz: Tz,
    /// Windows in priority order: the first that contains an instant wins.
    pub windows: Vec<Window>,
    /// Price outside every window; `None` leaves such times unpriced.
    pub default: Option<f64>,
}

impl TouSchedule {
    /// The price at `t`, if a window or the default covers it.
    pub fn price_at(&self, t: DateTime<Utc>) -> Option<f64> {
        let local = t.with_timezone(&self.tz).naive_local();
        self.windows
            .iter()
            .find(|w| w.contains(local.date(), local.time()))
            .map(|w| w.price)
            .or(self.default)
    }

    /// Every instant in `(from, to)` where the price may change: each
    /// window edge and each local midnight, converted to UTC for that day.
    pub fn edges(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let first = from.with_timezone(&self.tz).date_naive() - TimeDelta::days(1);
        let last = to.with_timezone(&self.tz).date_naive() + TimeDelta::days(1);
        let mut times: Vec<NaiveTime> = vec![NaiveTime::MIN];
        for w in &self.windows {
            times.push(w.from);
            times.push(w.to);
        }
        let mut edges = Vec::new();
        let mut day = first;
        while day <= last {
            for &time in &times {
                let t = local_to_utc(&self.tz, day, time);
                if from < t && t < to {
                    edges.push(t);
                }
            }
            day = day.succ_opt().unwrap_or(day);
            if day == NaiveDate::MAX {
                break;
            }
        }
        edges.sort();
        edges.dedup();
        edges
    }

    /// Slots covering `[from, to)`, split at every edge, each with its price;
    /// unpriced stretches are left out and equal neighbours are merged.
    pub fn slots(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Slot> {
        let mut cuts = vec![from];
        cuts.extend(self.edges(from, to));
        cuts.push(to);
        let mut out: Vec<Slot> = Vec::new();
        for w in cuts.windows(2) {
            let Some(price) = self.price_at(w[0]) else {
                continue;
            };
            match out.last_mut() {
                Some(last) if last.end == w[0] && last.price == price => last.end = w[1],
                _ => out.push(Slot {
                    start: w[0],
                    end: w[1],
                    price,
                }),
            }
        }
        out
    }
}

/// The UTC instant of a local date and time: the earlier one when the time
/// occurs twice (fall back), the end of the gap when it does not occur
/// (spring forward): then it moves later by the length of the gap, so 02:30
/// on a spring-forward day in Berlin is 03:30 CEST.
pub fn local_to_utc(tz: &Tz, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = day.and_time(time);
    if let Some(t) = tz.from_local_datetime(&naive).earliest() {
        return t.with_timezone(&Utc);
    }
    // Inside a gap: the same wall time one gap later exists; gaps are an hour
    // in every zone that observes DST today, two in rare history.
    for hours in 1..=2 {
        let later = naive + TimeDelta::hours(hours);
        if let Some(t) = tz.from_local_datetime(&later).earliest() {
            return t.with_timezone(&Utc);
        }
    }
    Utc.from_utc_datetime(&naive)
}

/// The `tou` price source: a fixed consumer tariff from the config.
#[derive(Debug, Clone)]
pub struct TouSource {
    /// The windows and their prices.
    pub schedule: TouSchedule,
    /// Currency of the prices.
    pub currency: String,
}

impl PriceSource for TouSource {
    fn id(&self) -> String {
        "tou".into()
    }

    fn fetch(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Quote, SourceError>> {
        let quote = Quote::new(
            Basis::ConsumerPerKwh,
            self.currency.clone(),
            self.schedule.slots(from, to),
        );
        Box::pin(async move { quote })
    }
}
