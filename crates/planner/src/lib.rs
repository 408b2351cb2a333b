//! Pure planning core of smartcharged: the cheapest charging plan that
//! meets a vehicle's goal before its deadline.
//!
//! The planner never does I/O and never reads a clock: `now` is part of the
//! [`PlanRequest`], and the same request always gives the same [`Plan`],
//! bit for bit. The daemon builds requests directly; the `plan` command
//! reads them as JSON.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use planner::{plan, PlanRequest, PriceSlot, TieBreak};
//!
//! let at = |h| Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap();
//! let prices = [0.30, 0.10, 0.20]
//!     .iter()
//!     .enumerate()
//!     .map(|(i, &p)| PriceSlot { start: at(18 + i as u32), end: at(19 + i as u32), price_per_kwh: p })
//!     .collect();
//! let req = PlanRequest {
//!     now: at(18), deadline: at(21), battery_kwh: 50.0, soc_percent: 50.0,
//!     target_percent: 60.0, max_power_kw: 10.0, efficiency: 1.0,
//!     min_soc_percent: 0.0, max_blocks: None, min_block_minutes: None,
//!     charge_limit_percent: None, opportunistic_price: None,
//!     tie_break: TieBreak::Later, charging_now: false, min_pause_minutes: None,
//!     finish_by_departure_minutes: None, prices,
//! };
//! let plan = plan(&req).unwrap();
//! assert_eq!(plan.blocks.len(), 1);
//! // 30 minutes in the 0.10 hour, as late as possible
//! assert_eq!(plan.blocks[0].start, at(19) + chrono::TimeDelta::minutes(30));
//! assert_eq!(plan.charge_minutes, 30);
//! ```

mod curve;
mod diagnose;
mod dp;
mod error;
mod extra;
mod greedy;
mod plan;
mod planner;
mod problem;
mod request;
mod site;
mod time;

pub use crate::error::PlanError;
pub use crate::plan::{kwh_short, Block, Plan};
pub use crate::planner::{charge_minutes, Planner};
pub use crate::request::{
    PlanRequest, PriceSlot, TieBreak, MAX_ABS_PRICE, MAX_BATTERY_KWH, MAX_BLOCKS_LIMIT,
    MAX_HORIZON, MAX_MINUTES, MAX_POWER_KW, MIN_EFFICIENCY,
};
pub use crate::site::{
    plan_site, plan_site_within, LoadStep, SitePlan, SiteRequest, SiteVehicle, SiteVehiclePlan,
    MAX_RESERVED_STEPS, MAX_SITE_LIMIT_KW, MAX_SITE_VEHICLES, MAX_VEHICLE_ID_LEN, SITE_WORK_BUDGET,
};

/// Plans one request with fresh buffers. Callers planning many requests
/// keep a [`Planner`] and reuse its buffers.
pub fn plan(req: &PlanRequest) -> Result<Plan, PlanError> {
    Planner::new().plan(req)
}
