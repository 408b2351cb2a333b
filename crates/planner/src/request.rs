//! What the planner is asked: the vehicle, its goal and the price curve.
//!
//! The daemon builds a [`PlanRequest`] directly; the CLI reads the same type
//! from JSON. Optional fields may be absent from the JSON.

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::curve::Slot;
use crate::error::PlanError;

/// The longest planning horizon accepted. Day-ahead prices reach at most a
/// day and a half ahead; a week leaves room for forecasts while keeping the
/// exact dynamic programme's tables bounded.
pub const MAX_HORIZON: TimeDelta = TimeDelta::days(7);

/// [`MAX_HORIZON`] in minutes: the bound of every field counted in minutes
/// (`min_block_minutes`, `min_pause_minutes`, `finish_by_departure_minutes`).
/// It is not tied to the request's own horizon, so a fixed policy stays
/// valid as the deadline draws near and the horizon shrinks.
pub const MAX_MINUTES: u32 = 7 * 24 * 60;

/// The most blocks `max_blocks` may ask for; leave it out for no limit.
pub const MAX_BLOCKS_LIMIT: u32 = 16;

/// Prices beyond ±this per kWh are refused: they are certainly a unit error,
/// and the bound keeps the exact integer arithmetic far from overflow. It
/// bounds `opportunistic_price` too.
pub const MAX_ABS_PRICE: f64 = 10_000.0;

/// Largest usable battery accepted, kWh: `battery_kwh` is in (0, this].
/// Ten times the largest car battery; the bound keeps every energy and
/// cost in a plan finite.
pub const MAX_BATTERY_KWH: f64 = 1_000.0;

/// Largest charge power accepted, kW: `max_power_kw` is in (0, this],
/// beyond any vehicle charger.
pub const MAX_POWER_KW: f64 = 1_000.0;

/// Smallest charging efficiency accepted: `efficiency` is in [this, 1].
/// Real chargers lose 5-25%; a value below this is a unit error (a
/// percentage read as a fraction), and dividing by it would blow energies
/// up towards infinity.
pub const MIN_EFFICIENCY: f64 = 0.05;

/// One price interval `[start, end)` with its price per kWh drawn from the
/// grid. Slots may have any length (15, 30, 60 minutes, mixed) and gaps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PriceSlot {
    /// First instant of the slot, on a whole UTC minute.
    #[serde(with = "crate::time")]
    pub start: DateTime<Utc>,
    /// First instant after the slot, on a whole UTC minute.
    #[serde(with = "crate::time")]
    pub end: DateTime<Utc>,
    /// Price per kWh in the curve's currency (tariff included if the caller
    /// applied it).
    pub price_per_kwh: f64,
}

/// Which of two equally cheap plans with the same number of blocks wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TieBreak {
    /// Charge as late as possible: the battery sits at a high charge for the
    /// shortest time, which is kinder to it.
    #[default]
    Later,
    /// Charge as early as possible: the car is ready sooner if plans change.
    Earlier,
}

/// Everything the planner needs; `now` is an input because the planner
/// never reads a clock (invariant 1).
///
/// Every number has a documented range (the constants of this module);
/// [`PlanRequest::validate`] refuses anything outside it, naming the field,
/// so every number of the resulting [`crate::Plan`] is finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// The current instant; planning starts at the next whole minute (the
    /// planning start).
    #[serde(with = "crate::time")]
    pub now: DateTime<Utc>,
    /// Charging must be done before this instant, at most [`MAX_HORIZON`]
    /// after `now`.
    #[serde(with = "crate::time")]
    pub deadline: DateTime<Utc>,
    /// Usable battery capacity in kWh, in (0, [`MAX_BATTERY_KWH`]].
    pub battery_kwh: f64,
    /// State of charge now, in percent, in [0, 100].
    pub soc_percent: f64,
    /// Wanted state of charge at the deadline, in percent, in [0, 100].
    pub target_percent: f64,
    /// Power drawn from the grid while charging, in kW, in
    /// (0, [`MAX_POWER_KW`]].
    pub max_power_kw: f64,
    /// Battery energy gained per unit of grid energy, in
    /// [[`MIN_EFFICIENCY`], 1].
    pub efficiency: f64,
    /// Charge up to this state of charge at once, whatever it costs; in
    /// percent, in [0, 100].
    #[serde(default)]
    pub min_soc_percent: f64,
    /// The most START commands the plan may send, in 1..=[`MAX_BLOCKS_LIMIT`];
    /// none = no limit. A block that continues the running session
    /// (`charging_now`) sends none and is not counted.
    #[serde(default)]
    pub max_blocks: Option<u32>,
    /// No block shorter than this, except the last one (which reaches the
    /// target or ends at the deadline) and one that continues the running
    /// session (it has already run for an unknown time); in
    /// 1..=[`MAX_MINUTES`].
    #[serde(default)]
    pub min_block_minutes: Option<u32>,
    /// The vehicle's own charge limit in percent, in [0, 100]; it caps the
    /// target.
    #[serde(default)]
    pub charge_limit_percent: Option<f64>,
    /// Also charge beyond the target, up to the charge limit, in minutes
    /// whose known price is at or below this; |price| at most
    /// [`MAX_ABS_PRICE`].
    #[serde(default)]
    pub opportunistic_price: Option<f64>,
    /// How ties between equally good plans are broken.
    #[serde(default)]
    pub tie_break: TieBreak,
    /// The vehicle is charging at `now`. A block that starts at the planning
    /// start then continues the running session: it starts at `now` (so the
    /// controller never stops for the partial minute before the planning
    /// start), sends no START, is not counted against `max_blocks` and is
    /// exempt from `min_block_minutes`; on equal cost, continuing wins over
    /// stopping and starting again. A plan that does not charge at the
    /// planning start stops the session there. A continuing plan counts the
    /// energy of the seconds from `now` to the planning start, so it may
    /// need a whole minute less than a plan that stops.
    #[serde(default)]
    pub charging_now: bool,
    /// No pause between two blocks shorter than this many minutes, in
    /// 0..=[`MAX_MINUTES`]; none, 0 or 1 = no limit (blocks never touch).
    /// The wait before the first block is not a pause, unless the vehicle
    /// is charging now and the plan stops it at the planning start: then
    /// the first block starts this long after the planning start at the
    /// earliest.
    #[serde(default)]
    pub min_pause_minutes: Option<u32>,
    /// The last block ends no earlier than this many minutes before the
    /// deadline (a battery warm at departure), in 0..=[`MAX_MINUTES`]; 0 =
    /// the last block ends at the deadline. When no plan meets it together
    /// with the other constraints (a forced `min_soc_percent` block and one
    /// block at most, say) it is dropped and the plan says so in a warning:
    /// reaching the target by the deadline comes first.
    #[serde(default)]
    pub finish_by_departure_minutes: Option<u32>,
    /// The price curve, sorted by start, not overlapping. Slots before `now`
    /// serve as history for forecasting unknown prices.
    pub prices: Vec<PriceSlot>,
}

/// Epoch minutes of the days last seen, so the instants of one day need
/// no date arithmetic: a curve of quarter hours spans two or three days.
struct Days {
    date: chrono::NaiveDate,
    /// Epoch minute of that date's midnight.
    base: i64,
}

impl Days {
    /// `t` in whole epoch minutes, or None when `t` is not on a whole
    /// minute (a leap second's nanoseconds count as not whole).
    #[inline]
    fn minute(&mut self, t: &DateTime<Utc>) -> Option<i64> {
        let naive = t.naive_utc();
        let time = naive.time();
        let secs = time.num_seconds_from_midnight();
        if !secs.is_multiple_of(60) || time.nanosecond() != 0 {
            return None;
        }
        let date = naive.date();
        if date != self.date {
            // once per day of the curve
            self.date = date;
            self.base = (t.timestamp() - i64::from(secs)).div_euclid(60);
        }
        Some(self.base + i64::from(secs / 60))
    }
}

/// Checks price slots (sorted, whole minutes, bounded prices), handing
/// each valid one to `each` in epoch minutes: a single request and a site
/// request share one curve check. One pass, no allocation, and a date
/// computed once per day of the curve: the planner validates the whole
/// curve on every plan, so this is on its fast path.
pub(crate) fn check_slots(
    prices: &[PriceSlot],
    each: &mut impl FnMut(Slot),
) -> Result<(), PlanError> {
    let mut days = Days {
        date: chrono::NaiveDate::MIN,
        base: 0,
    };
    let mut prev_end = i64::MIN;
    let mut prev: Option<&PriceSlot> = None;
    for (i, s) in prices.iter().enumerate() {
        // slots usually follow each other: the previous end is this start
        let start = match prev {
            Some(p) if p.end == s.start => Some(prev_end),
            _ => days.minute(&s.start),
        };
        prev = Some(s);
        let Some(start) = start else {
            return Err(PlanError::invalid(
                format!("prices[{i}].start"),
                "must be on a whole minute",
            ));
        };
        let Some(end) = days.minute(&s.end) else {
            return Err(PlanError::invalid(
                format!("prices[{i}].end"),
                "must be on a whole minute",
            ));
        };
        if end <= start {
            return Err(PlanError::invalid(
                format!("prices[{i}].end"),
                "must be after the slot's start",
            ));
        }
        // refuses the infinities too
        if s.price_per_kwh.is_nan() || s.price_per_kwh.abs() > MAX_ABS_PRICE {
            return Err(PlanError::invalid(
                format!("prices[{i}].price_per_kwh"),
                format!(
                    "must be a finite number between -{MAX_ABS_PRICE} and {MAX_ABS_PRICE}, got {}",
                    s.price_per_kwh
                ),
            ));
        }
        if start < prev_end {
            return Err(PlanError::invalid(
                format!("prices[{i}].start"),
                "slots must be sorted by start and must not overlap",
            ));
        }
        prev_end = end;
        each(Slot {
            start,
            end,
            price: s.price_per_kwh,
        });
    }
    Ok(())
}

fn finite(field: &str, v: f64) -> Result<f64, PlanError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(PlanError::invalid(
            field,
            format!("must be a finite number, got {v}"),
        ))
    }
}

fn percent(field: &str, v: f64) -> Result<f64, PlanError> {
    finite(field, v)?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(PlanError::invalid(
            field,
            format!("must be between 0 and 100, got {v}"),
        ))
    }
}

/// `v` in `(0, max]`.
fn positive(field: &str, v: f64, max: f64) -> Result<f64, PlanError> {
    finite(field, v)?;
    if v > 0.0 && v <= max {
        Ok(v)
    } else {
        Err(PlanError::invalid(
            field,
            format!("must be above 0 and at most {max}, got {v}"),
        ))
    }
}

/// `v` in `lo..=MAX_MINUTES`.
fn minutes(field: &str, v: u32, lo: u32) -> Result<u32, PlanError> {
    if (lo..=MAX_MINUTES).contains(&v) {
        Ok(v)
    } else {
        Err(PlanError::invalid(
            field,
            format!("must be between {lo} and {MAX_MINUTES} minutes, got {v}"),
        ))
    }
}

impl PlanRequest {
    /// Checks every field and returns the first problem, naming its field.
    pub fn validate(&self) -> Result<(), PlanError> {
        self.check_scalars()?;
        self.check_slots(&mut |_| {})
    }

    /// Checks the price slots, handing each valid one to `each` in epoch
    /// minutes: the planner converts while it checks, reading every
    /// timestamp once.
    pub(crate) fn check_slots(&self, each: &mut impl FnMut(Slot)) -> Result<(), PlanError> {
        check_slots(&self.prices, each)
    }

    /// Checks everything but the price slots.
    pub(crate) fn check_scalars(&self) -> Result<(), PlanError> {
        self.check_vehicle()?;
        if self.prices.is_empty() {
            return Err(PlanError::invalid(
                "prices",
                "at least one price slot is needed",
            ));
        }
        Ok(())
    }

    /// Checks the vehicle's own fields and its deadline: what a site
    /// request asks of each of its vehicles.
    pub(crate) fn check_vehicle(&self) -> Result<(), PlanError> {
        positive("battery_kwh", self.battery_kwh, MAX_BATTERY_KWH)?;
        percent("soc_percent", self.soc_percent)?;
        percent("target_percent", self.target_percent)?;
        percent("min_soc_percent", self.min_soc_percent)?;
        positive("max_power_kw", self.max_power_kw, MAX_POWER_KW)?;
        finite("efficiency", self.efficiency)?;
        if !(MIN_EFFICIENCY..=1.0).contains(&self.efficiency) {
            return Err(PlanError::invalid(
                "efficiency",
                format!(
                    "must be between {MIN_EFFICIENCY} and 1, got {}",
                    self.efficiency
                ),
            ));
        }
        if let Some(limit) = self.charge_limit_percent {
            percent("charge_limit_percent", limit)?;
        }
        if let Some(p) = self.opportunistic_price {
            finite("opportunistic_price", p)?;
            if p.abs() > MAX_ABS_PRICE {
                return Err(PlanError::invalid(
                    "opportunistic_price",
                    format!("must be between -{MAX_ABS_PRICE} and {MAX_ABS_PRICE}, got {p}"),
                ));
            }
        }
        if let Some(k) = self.max_blocks {
            if !(1..=MAX_BLOCKS_LIMIT).contains(&k) {
                return Err(PlanError::invalid(
                    "max_blocks",
                    format!(
                        "must be between 1 and {MAX_BLOCKS_LIMIT} (leave it out for no limit), got {k}"
                    ),
                ));
            }
        }
        if let Some(m) = self.min_block_minutes {
            minutes("min_block_minutes", m, 1)?;
        }
        if let Some(m) = self.min_pause_minutes {
            minutes("min_pause_minutes", m, 0)?;
        }
        if let Some(m) = self.finish_by_departure_minutes {
            minutes("finish_by_departure_minutes", m, 0)?;
        }
        if self.deadline <= self.now {
            return Err(PlanError::invalid(
                "deadline",
                format!("{} is not after now ({})", self.deadline, self.now),
            ));
        }
        if self.deadline - self.now > MAX_HORIZON {
            return Err(PlanError::invalid(
                "deadline",
                "is more than 7 days after now",
            ));
        }
        Ok(())
    }
}

impl PlanRequest {
    /// Reads a request from JSON. A malformed request gets an error naming
    /// the offending field (`prices[2].end: ...`), not just a position.
    pub fn from_json(text: &str) -> Result<PlanRequest, PlanError> {
        serde_json::from_str(text).map_err(|e| crate::diagnose::diagnose(text, e))
    }
}
