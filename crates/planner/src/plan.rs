//! What the planner answers: charging blocks with their cost.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One uninterrupted charging interval `[start, end)` on whole UTC minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// When charging starts.
    pub start: DateTime<Utc>,
    /// When charging stops.
    pub end: DateTime<Utc>,
    /// Grid energy drawn in the block, kWh.
    pub energy_kwh: f64,
    /// What that energy costs at the curve's prices (forecast where unknown).
    pub cost: f64,
    /// True when part of the block is priced by a forecast: the daemon
    /// replans when the real prices arrive.
    pub tentative: bool,
}

/// The planner's answer. `energy_kwh` and `cost` are totals over `blocks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// False when the goal cannot be reached before the deadline; the plan
    /// then charges from now on without pause.
    pub feasible: bool,
    /// Minutes of charging in all blocks.
    pub charge_minutes: u32,
    /// Grid energy drawn in all blocks, kWh.
    pub energy_kwh: f64,
    /// Cost of all blocks.
    pub cost: f64,
    /// Cost of charging the same minutes from now on without pause: what a
    /// dumb charger would pay.
    pub asap_cost: f64,
    /// Grid energy still missing at the deadline, kWh (0 when feasible).
    pub shortfall_kwh: f64,
    /// The charging blocks, sorted, neither overlapping nor touching.
    pub blocks: Vec<Block>,
    /// Things the caller should know: forecast prices, capped goals, an
    /// unreachable deadline.
    pub warnings: Vec<String>,
}

impl Plan {
    /// Money saved against charging at once (`asap_cost - cost`).
    pub fn saving(&self) -> f64 {
        self.asap_cost - self.cost
    }

    /// Whether charging is planned at `t` (what the controller asks on
    /// every tick).
    pub fn is_charging_at(&self, t: DateTime<Utc>) -> bool {
        self.blocks.iter().any(|b| b.start <= t && t < b.end)
    }
}

/// An energy shortfall as text, `"1.25 kWh"`: two decimals, or `"less
/// than 0.01 kWh"` for a real shortfall that two decimals would show as
/// `0.00` (which reads as no shortfall at all).
pub fn kwh_short(kwh: f64) -> String {
    if kwh > 0.0 && kwh < 0.01 {
        "less than 0.01 kWh".to_string()
    } else {
        format!("{kwh:.2} kWh")
    }
}
