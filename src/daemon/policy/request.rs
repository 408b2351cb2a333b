//! From a vehicle observation, its policy and the price curve to a planner
//! request.

use chrono::{DateTime, TimeDelta, Utc};
use planner::{PlanError, PlanRequest, PriceSlot};

use super::VehiclePolicy;
use crate::model::Vehicle;
use crate::prices::PriceCurve;

/// How far before `now` price slots go into a request: the planner prices
/// unknown future minutes with the same minute a week (else a day) earlier,
/// so a week of history lets it forecast a whole day that is not yet
/// published.
pub const PRICE_HISTORY: TimeDelta = TimeDelta::days(7);

/// What the planner needs to know about a vehicle, taken from one
/// observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// State of charge now, percent (0-100).
    pub soc_percent: f64,
    /// Usable battery capacity, kWh (positive).
    pub battery_kwh: f64,
    /// The vehicle's own charge limit, percent; plans never go beyond it.
    pub charge_limit_percent: Option<f64>,
    /// Grid power while charging, kW (positive).
    pub power_kw: f64,
    /// Charging at the observation: a plan may continue the running block
    /// from now rather than stop and start it again.
    pub charging: bool,
}

/// Why no plan can be made for a vehicle now; the caller logs it and tries
/// again after the next observation or price update.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotPlannable {
    /// The observation carries no charge state (not requested or not sent).
    #[error("no charge state reported")]
    NoChargeState,
    /// The state of charge is unknown.
    #[error("state of charge unknown")]
    NoSoc,
    /// The battery capacity is unknown.
    #[error("battery capacity unknown")]
    NoCapacity,
    /// The charge power is neither configured, nor observed, nor estimated.
    #[error("charge power unknown: set max_power_kw or wait until the vehicle has charged once")]
    NoPower,
    /// The curve has no slot between a week before now and the deadline.
    #[error("no prices known before the deadline")]
    NoPrices,
    /// The request was built but the planner would refuse it (a deadline
    /// too far or already past, a slot off the minute grid).
    #[error("planner request invalid: {0}")]
    Invalid(PlanError),
}

impl Observation {
    /// Reads what the planner needs from a vehicle.
    ///
    /// The charge power is, in this order: the policy's `max_power_kw`; the
    /// vehicle's charge rate while it is charging (Enode sends none
    /// otherwise); `power_estimate_kw`, the daemon's estimate from earlier
    /// observations (e.g. from the observed SoC increase). A state of
    /// charge outside 0-100 is clamped; a charge limit outside (0, 100] is
    /// ignored, since vendors report 0 for "unknown".
    pub fn from_vehicle(
        vehicle: &Vehicle,
        power_estimate_kw: Option<f64>,
        policy: &VehiclePolicy,
    ) -> Result<Observation, NotPlannable> {
        let cs = vehicle
            .charge_state
            .as_ref()
            .ok_or(NotPlannable::NoChargeState)?;
        let soc = cs
            .battery_level
            .filter(|v| v.is_finite())
            .ok_or(NotPlannable::NoSoc)?
            .clamp(0.0, 100.0);
        // Absurd readings (beyond the planner's ranges) count as unknown.
        let battery_kwh = cs
            .battery_capacity_kwh
            .filter(|&v| positive(v) && v <= planner::MAX_BATTERY_KWH)
            .ok_or(NotPlannable::NoCapacity)?;
        let power = |v: f64| positive(v) && v <= planner::MAX_POWER_KW;
        let observed = cs
            .charge_rate_kw
            .filter(|&v| cs.is_charging == Some(true) && power(v));
        let power_kw = policy
            .max_power_kw
            .or(observed)
            .or(power_estimate_kw.filter(|&v| power(v)))
            .ok_or(NotPlannable::NoPower)?;
        Ok(Observation {
            soc_percent: soc,
            battery_kwh,
            charge_limit_percent: cs.charge_limit.filter(|&v| positive(v) && v <= 100.0),
            power_kw,
            charging: cs.is_charging == Some(true),
        })
    }
}

fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// The planner request for a vehicle at `now`: its goal from `policy`, its
/// state from `obs`, and the price slots of `curve` from [`PRICE_HISTORY`]
/// before `now` up to `deadline` (the earlier ones as history for
/// forecasting the unpublished part). The request is checked the way the
/// planner checks it, so an `Ok` request plans.
pub fn plan_request(
    now: DateTime<Utc>,
    policy: &VehiclePolicy,
    deadline: DateTime<Utc>,
    obs: &Observation,
    curve: &PriceCurve,
) -> Result<PlanRequest, NotPlannable> {
    let from = now - PRICE_HISTORY;
    let prices: Vec<PriceSlot> = curve
        .from(from)
        .iter()
        .take_while(|s| s.start < deadline)
        .map(|s| PriceSlot {
            start: s.start,
            end: s.end,
            price_per_kwh: s.price,
        })
        .collect();
    if prices.is_empty() {
        return Err(NotPlannable::NoPrices);
    }
    let req = PlanRequest {
        now,
        deadline,
        battery_kwh: obs.battery_kwh,
        soc_percent: obs.soc_percent,
        target_percent: policy.target_percent,
        max_power_kw: obs.power_kw,
        efficiency: policy.efficiency,
        min_soc_percent: policy.min_soc_percent,
        max_blocks: policy.max_blocks,
        min_block_minutes: policy.min_block_minutes,
        min_pause_minutes: policy.min_pause_minutes,
        finish_by_departure_minutes: policy.finish_by_departure_minutes,
        charging_now: obs.charging,
        charge_limit_percent: obs.charge_limit_percent,
        opportunistic_price: policy.opportunistic_price,
        tie_break: policy.tie_break,
        prices,
    };
    req.validate().map_err(NotPlannable::Invalid)?;
    Ok(req)
}
