//! What the site planner is asked and what it answers.
//!
//! A site is one grid connection shared by several vehicles: the summed
//! power of the vehicles charging at any minute must stay within
//! `site_limit_kw`. Each vehicle carries the fields of a single
//! [`crate::PlanRequest`] that concern it; the price curve and `now` are
//! shared.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::diagnose::{check_prices, field};
use crate::error::PlanError;
use crate::plan::Block;
use crate::request::{check_slots, PlanRequest, PriceSlot, TieBreak, MAX_POWER_KW};

/// The most vehicles one site request may hold. A depot of this size is
/// well beyond a house connection; the bound keeps the flow network (and
/// the per-vehicle output) small.
pub const MAX_SITE_VEHICLES: usize = 64;

/// The largest site limit accepted, kW: a medium-voltage depot connection.
pub const MAX_SITE_LIMIT_KW: f64 = 100.0 * MAX_POWER_KW;

/// The most reserved-power steps one site request may hold.
pub const MAX_RESERVED_STEPS: usize = 1024;

/// Longest vehicle id accepted, bytes.
pub const MAX_VEHICLE_ID_LEN: usize = 128;

/// One vehicle at the site: the vehicle fields of a single request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteVehicle {
    /// Names the vehicle in the answer: 1 to [`MAX_VEHICLE_ID_LEN`] bytes
    /// of `[A-Za-z0-9._:@-]`, unique within the request.
    pub id: String,
    /// Charging must be done before this instant, at most
    /// [`crate::MAX_HORIZON`] after `now`.
    #[serde(with = "crate::time")]
    pub deadline: DateTime<Utc>,
    /// Usable battery capacity in kWh, as in a single request.
    pub battery_kwh: f64,
    /// State of charge now, percent.
    pub soc_percent: f64,
    /// Wanted state of charge at the deadline, percent.
    pub target_percent: f64,
    /// Power drawn from the grid while charging, kW; the vehicle charges at
    /// this power or not at all.
    pub max_power_kw: f64,
    /// Battery energy gained per unit of grid energy.
    pub efficiency: f64,
    /// Charge up to this state of charge at once, before any other
    /// vehicle's cheap minutes (the first rule when the limit binds).
    #[serde(default)]
    pub min_soc_percent: f64,
    /// The vehicle's own charge limit in percent; it caps the target.
    #[serde(default)]
    pub charge_limit_percent: Option<f64>,
    /// The most blocks, as in a single request; the joint plan keeps it
    /// (see the module documentation of `site`).
    #[serde(default)]
    pub max_blocks: Option<u32>,
    /// Shortest block but the last, as in a single request; kept.
    #[serde(default)]
    pub min_block_minutes: Option<u32>,
    /// Shortest pause between blocks, as in a single request; kept.
    #[serde(default)]
    pub min_pause_minutes: Option<u32>,
}

/// A site request: shared prices and limit, several vehicles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteRequest {
    /// The current instant; planning starts at the next whole minute.
    #[serde(with = "crate::time")]
    pub now: DateTime<Utc>,
    /// The most power all vehicles together may draw at any minute, kW,
    /// in (0, [`MAX_SITE_LIMIT_KW`]].
    pub site_limit_kw: f64,
    /// How ties between equally cheap plans are broken.
    #[serde(default)]
    pub tie_break: TieBreak,
    /// The shared price curve, as in a single request.
    pub prices: Vec<PriceSlot>,
    /// The vehicles, 1 to [`MAX_SITE_VEHICLES`].
    pub vehicles: Vec<SiteVehicle>,
    /// Power already taken at the site by vehicles outside the plan (a
    /// car an operator told to charge now, one a driver started by hand),
    /// kW over `[start, end)`; steps may overlap and add up. The plan keeps
    /// the site limit less this at every minute a step touches. At most
    /// [`MAX_RESERVED_STEPS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserved: Vec<LoadStep>,
}

/// One vehicle's part of the joint plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteVehiclePlan {
    /// The vehicle's id from the request.
    pub id: String,
    /// Whether the vehicle reaches its target by its deadline.
    pub feasible: bool,
    /// Minutes of charging in all blocks.
    pub charge_minutes: u32,
    /// Grid energy drawn in all blocks, kWh.
    pub energy_kwh: f64,
    /// Cost of all blocks.
    pub cost: f64,
    /// Grid energy still missing at the deadline, kWh (0 when feasible).
    pub shortfall_kwh: f64,
    /// The charging blocks, sorted, neither overlapping nor touching.
    pub blocks: Vec<Block>,
    /// What the caller should know about this vehicle: capped goals, a
    /// shortfall (and when its block rules caused it), a block rule its
    /// min-SoC minutes break.
    pub warnings: Vec<String>,
}

/// One step of the site's summed load: `kw` drawn in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadStep {
    /// First instant of the step.
    pub start: DateTime<Utc>,
    /// First instant after the step.
    pub end: DateTime<Utc>,
    /// Summed power of the vehicles charging then, kW (whole watts).
    pub kw: f64,
}

/// The site planner's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SitePlan {
    /// Whether every vehicle reaches its target by its deadline.
    pub feasible: bool,
    /// Whether the plan is proven the cheapest (with the shortfall rule);
    /// when false, `lower_bound` and `gap` say how far from it it may be.
    pub exact: bool,
    /// Cost of all vehicles' blocks.
    pub cost: f64,
    /// No plan serving the same energy costs less than this (with block
    /// rules: no plan that keeps them); `None` when the relaxation could
    /// serve more energy than the plan does, so no bound on the same terms
    /// is known. With block rules a bound on the plan's own terms (each
    /// vehicle charged the minutes this plan gives it) is always given;
    /// when a plan serving more may exist, a site warning says so, since
    /// then even `gap` 0 with `exact` false does not make this plan the
    /// best.
    pub lower_bound: Option<f64>,
    /// `cost - lower_bound` (0 when exact).
    pub gap: Option<f64>,
    /// Each vehicle's plan, in the order of the request.
    pub vehicles: Vec<SiteVehiclePlan>,
    /// The summed load over time, steps where it is not zero.
    pub load: Vec<LoadStep>,
    /// Site-wide remarks: forecast prices, the exact domain.
    pub warnings: Vec<String>,
    /// Table cells the exact solver filled to keep the block rules (0
    /// without rules), at most the work budget
    /// ([`crate::SITE_WORK_BUDGET`] for [`crate::plan_site`]): the work
    /// this plan took, counted like the budget, so the same request
    /// always reports the same number.
    #[serde(default)]
    pub work_cells: u64,
}

impl SitePlan {
    /// The highest summed load of the plan, kW.
    pub fn peak_kw(&self) -> f64 {
        self.load.iter().map(|s| s.kw).fold(0.0, f64::max)
    }
}

fn id_ok(id: &str) -> bool {
    (1..=MAX_VEHICLE_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b))
}

impl SiteVehicle {
    /// The single request this vehicle would make alone at `now`.
    pub fn request(
        &self,
        now: DateTime<Utc>,
        tie_break: TieBreak,
        prices: Vec<PriceSlot>,
    ) -> PlanRequest {
        PlanRequest {
            now,
            deadline: self.deadline,
            battery_kwh: self.battery_kwh,
            soc_percent: self.soc_percent,
            target_percent: self.target_percent,
            max_power_kw: self.max_power_kw,
            efficiency: self.efficiency,
            min_soc_percent: self.min_soc_percent,
            max_blocks: self.max_blocks,
            min_block_minutes: self.min_block_minutes,
            charge_limit_percent: self.charge_limit_percent,
            opportunistic_price: None,
            tie_break,
            charging_now: false,
            min_pause_minutes: self.min_pause_minutes,
            finish_by_departure_minutes: None,
            prices,
        }
    }
}

impl SiteRequest {
    /// Checks every field and returns the first problem, naming its field
    /// as spelled in the JSON (`vehicles[2].max_power_kw`).
    pub fn validate(&self) -> Result<(), PlanError> {
        let limit = self.site_limit_kw;
        if !(limit.is_finite() && limit > 0.0 && limit <= MAX_SITE_LIMIT_KW) {
            return Err(PlanError::invalid(
                "site_limit_kw",
                format!("must be above 0 and at most {MAX_SITE_LIMIT_KW}, got {limit}"),
            ));
        }
        if self.vehicles.is_empty() || self.vehicles.len() > MAX_SITE_VEHICLES {
            return Err(PlanError::invalid(
                "vehicles",
                format!(
                    "must hold 1 to {MAX_SITE_VEHICLES} vehicles, got {}",
                    self.vehicles.len()
                ),
            ));
        }
        if self.prices.is_empty() {
            return Err(PlanError::invalid(
                "prices",
                "at least one price slot is needed",
            ));
        }
        check_slots(&self.prices, &mut |_| {})?;
        if self.reserved.len() > MAX_RESERVED_STEPS {
            return Err(PlanError::invalid(
                "reserved",
                format!(
                    "must hold at most {MAX_RESERVED_STEPS} steps, got {}",
                    self.reserved.len()
                ),
            ));
        }
        for (i, r) in self.reserved.iter().enumerate() {
            if !(r.kw.is_finite() && r.kw >= 0.0 && r.kw <= MAX_SITE_LIMIT_KW) {
                return Err(PlanError::invalid(
                    format!("reserved[{i}].kw"),
                    format!("must be 0 to {MAX_SITE_LIMIT_KW}, got {}", r.kw),
                ));
            }
            if r.end <= r.start {
                return Err(PlanError::invalid(
                    format!("reserved[{i}].end"),
                    "must be after its start",
                ));
            }
        }
        for (i, v) in self.vehicles.iter().enumerate() {
            if !id_ok(&v.id) {
                return Err(PlanError::invalid(
                    format!("vehicles[{i}].id"),
                    format!(
                        "must be 1 to {MAX_VEHICLE_ID_LEN} characters of A-Z a-z 0-9 . _ : @ -"
                    ),
                ));
            }
            if self.vehicles[..i].iter().any(|w| w.id == v.id) {
                return Err(PlanError::invalid(
                    format!("vehicles[{i}].id"),
                    format!("`{}` appears twice", v.id),
                ));
            }
            v.request(self.now, self.tie_break, Vec::new())
                .check_vehicle()
                .map_err(|e| prefixed(i, e))?;
        }
        Ok(())
    }

    /// Reads a site request from JSON. A malformed request gets an error
    /// naming the offending field (`vehicles[1].deadline: ...`).
    pub fn from_json(text: &str) -> Result<SiteRequest, PlanError> {
        serde_json::from_str(text).map_err(|e| diagnose(text, e))
    }
}

fn prefixed(i: usize, e: PlanError) -> PlanError {
    match e {
        PlanError::Invalid { field, reason } => PlanError::Invalid {
            field: format!("vehicles[{i}].{field}"),
            reason,
        },
        other => other,
    }
}

/// Names the field behind a JSON error in a site request.
fn diagnose(text: &str, err: serde_json::Error) -> PlanError {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        // not JSON at all: the single request's mapping of line and
        // column to a field applies as it is
        return crate::diagnose::diagnose(text, err);
    };
    let Some(obj) = value.as_object() else {
        return PlanError::invalid("request", "must be a JSON object");
    };
    check_site(obj).unwrap_or_else(|| PlanError::invalid("request", err.to_string()))
}

fn check_site(obj: &Map<String, Value>) -> Option<PlanError> {
    type Time = DateTime<Utc>;
    field::<Time>(obj, "now", "now", true)
        .or_else(|| field::<f64>(obj, "site_limit_kw", "site_limit_kw", true))
        .or_else(|| field::<TieBreak>(obj, "tie_break", "tie_break", false))
        .or_else(|| check_prices(obj))
        .or_else(|| {
            let Some(vs) = obj.get("vehicles") else {
                return Some(PlanError::invalid("vehicles", "is missing"));
            };
            let Some(vs) = vs.as_array() else {
                return Some(PlanError::invalid(
                    "vehicles",
                    "must be an array of vehicles",
                ));
            };
            vs.iter().enumerate().find_map(|(i, v)| {
                let Some(v) = v.as_object() else {
                    return Some(PlanError::invalid(
                        format!("vehicles[{i}]"),
                        "must be an object",
                    ));
                };
                let p = |f: &str| format!("vehicles[{i}].{f}");
                field::<String>(v, "id", &p("id"), true)
                    .or_else(|| field::<Time>(v, "deadline", &p("deadline"), true))
                    .or_else(|| {
                        [
                            "battery_kwh",
                            "soc_percent",
                            "target_percent",
                            "max_power_kw",
                            "efficiency",
                        ]
                        .iter()
                        .find_map(|f| field::<f64>(v, f, &p(f), true))
                    })
                    .or_else(|| field::<f64>(v, "min_soc_percent", &p("min_soc_percent"), false))
                    .or_else(|| {
                        field::<Option<f64>>(
                            v,
                            "charge_limit_percent",
                            &p("charge_limit_percent"),
                            false,
                        )
                    })
                    .or_else(|| {
                        ["max_blocks", "min_block_minutes", "min_pause_minutes"]
                            .iter()
                            .find_map(|f| field::<Option<u32>>(v, f, &p(f), false))
                    })
                    .or_else(|| {
                        SiteVehicle::deserialize(&Value::Object(v.clone()))
                            .err()
                            .map(|e| PlanError::invalid(format!("vehicles[{i}]"), e.to_string()))
                    })
            })
        })
}
