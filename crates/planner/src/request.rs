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

/// The most blocks `max_blocks` may ask for; leave it out for no limit.
pub const MAX_BLOCKS_LIMIT: u32 = 16;

/// Prices beyond ±this per kWh are refused: they are certainly a unit error,
/// and the bound keeps the exact integer arithmetic far from overflow.
pub const MAX_ABS_PRICE: f64 = 10_000.0;

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// The current instant; planning starts at the next whole minute.
    #[serde(with = "crate::time")]
    pub now: DateTime<Utc>,
    /// Charging must be done before this instant.
    #[serde(with = "crate::time")]
    pub deadline: DateTime<Utc>,
    /// Usable battery capacity in kWh.
    pub battery_kwh: f64,
    /// State of charge now, in percent.
    pub soc_percent: f64,
    /// Wanted state of charge at the deadline, in percent.
    pub target_percent: f64,
    /// Power drawn from the grid while charging, in kW.
    pub max_power_kw: f64,
    /// Battery energy gained per unit of grid energy, in (0, 1].
    pub efficiency: f64,
    /// Charge up to this state of charge at once, whatever it costs.
    #[serde(default)]
    pub min_soc_percent: f64,
    /// The most separate charging blocks (start/stop cycles); none = no limit.
    #[serde(default)]
    pub max_blocks: Option<u32>,
    /// No block shorter than this, except the last one (which reaches the
    /// target or ends at the deadline).
    #[serde(default)]
    pub min_block_minutes: Option<u32>,
    /// The vehicle's own charge limit in percent; it caps the target.
    #[serde(default)]
    pub charge_limit_percent: Option<f64>,
    /// Also charge beyond the target, up to the charge limit, in minutes
    /// whose known price is at or below this.
    #[serde(default)]
    pub opportunistic_price: Option<f64>,
    /// How ties between equally good plans are broken.
    #[serde(default)]
    pub tie_break: TieBreak,
    /// The price curve, sorted by start, not overlapping. Slots before `now`
    /// serve as history for forecasting unknown prices.
    pub prices: Vec<PriceSlot>,
}

/// The timestamp of `t`, given that of `base`: on the same day only the
/// times of day differ, which is cheaper than a full date computation.
fn seconds_after(base_ts: i64, base: &DateTime<Utc>, t: &DateTime<Utc>) -> i64 {
    let (a, b) = (base.naive_utc(), t.naive_utc());
    if a.date() == b.date() {
        base_ts + i64::from(b.time().num_seconds_from_midnight())
            - i64::from(a.time().num_seconds_from_midnight())
    } else {
        t.timestamp()
    }
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

fn positive(field: &str, v: f64) -> Result<f64, PlanError> {
    finite(field, v)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(PlanError::invalid(
            field,
            format!("must be positive, got {v}"),
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
        let mut prev_end = i64::MIN;
        let mut prev: Option<&PriceSlot> = None;
        for (i, s) in self.prices.iter().enumerate() {
            // slots usually follow each other: reuse the previous end
            let start = match prev {
                Some(p) if p.end == s.start => prev_end,
                _ => s.start.timestamp(),
            };
            let end = seconds_after(start, &s.start, &s.end);
            prev = Some(s);
            if start.rem_euclid(60) != 0 || s.start.timestamp_subsec_nanos() != 0 {
                return Err(PlanError::invalid(
                    format!("prices[{i}].start"),
                    "must be on a whole minute",
                ));
            }
            if end.rem_euclid(60) != 0 || s.end.timestamp_subsec_nanos() != 0 {
                return Err(PlanError::invalid(
                    format!("prices[{i}].end"),
                    "must be on a whole minute",
                ));
            }
            if end <= start {
                return Err(PlanError::invalid(
                    format!("prices[{i}].end"),
                    "must be after the slot's start",
                ));
            }
            if !s.price_per_kwh.is_finite() || s.price_per_kwh.abs() > MAX_ABS_PRICE {
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
                start: start.div_euclid(60),
                end: end.div_euclid(60),
                price: s.price_per_kwh,
            });
        }
        Ok(())
    }

    /// Checks everything but the price slots.
    pub(crate) fn check_scalars(&self) -> Result<(), PlanError> {
        positive("battery_kwh", self.battery_kwh)?;
        percent("soc_percent", self.soc_percent)?;
        percent("target_percent", self.target_percent)?;
        percent("min_soc_percent", self.min_soc_percent)?;
        positive("max_power_kw", self.max_power_kw)?;
        positive("efficiency", self.efficiency)?;
        if self.efficiency > 1.0 {
            return Err(PlanError::invalid(
                "efficiency",
                format!("must be at most 1, got {}", self.efficiency),
            ));
        }
        if let Some(limit) = self.charge_limit_percent {
            percent("charge_limit_percent", limit)?;
        }
        if let Some(p) = self.opportunistic_price {
            finite("opportunistic_price", p)?;
        }
        match self.max_blocks {
            Some(0) => return Err(PlanError::invalid("max_blocks", "must be at least 1")),
            Some(k) if k > MAX_BLOCKS_LIMIT => {
                return Err(PlanError::invalid(
                    "max_blocks",
                    format!("must be at most {MAX_BLOCKS_LIMIT} (leave it out for no limit)"),
                ))
            }
            _ => {}
        }
        if self.min_block_minutes == Some(0) {
            return Err(PlanError::invalid(
                "min_block_minutes",
                "must be at least 1",
            ));
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
        if self.prices.is_empty() {
            return Err(PlanError::invalid(
                "prices",
                "at least one price slot is needed",
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
