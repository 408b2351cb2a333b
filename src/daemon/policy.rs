//! Which settings apply to each vehicle, and how a vehicle observation, its
//! policy and the price curve become a planner request.
//!
//! `[policy]` holds global settings, `[[policy.users]]` overrides for all
//! vehicles of one user and `[[policy.vehicles]]` overrides for one vehicle.
//! Per setting the most specific level wins: vehicle, then user, then
//! global, then the built-in default. [`PolicyConfig::for_vehicle`] resolves
//! them into a [`VehiclePolicy`] of plain values.
//!
//! Everything here is pure: no I/O and no clock; `now` is an argument.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use planner::TieBreak;

mod deadline;
mod raw;
mod request;

pub(crate) use deadline::local_instant;
pub use deadline::{next_deadline, replan_deadline, MIN_LEAD};
pub use raw::{RawDeadlines, RawPolicyConfig, RawSite, RawUserPolicy, RawVehiclePolicy};
pub use request::{plan_request, NotPlannable, Observation, PRICE_HISTORY};

/// Built-in target state of charge, percent.
pub const DEFAULT_TARGET_PERCENT: f64 = 80.0;
/// Built-in deadline, local time of day.
pub const DEFAULT_DEADLINE: NaiveTime = match NaiveTime::from_hms_opt(7, 0, 0) {
    Some(t) => t,
    None => panic!("07:00 is a time"),
};
/// Built-in charging efficiency (battery energy per grid energy).
pub const DEFAULT_EFFICIENCY: f64 = 0.9;
/// Built-in SoC drift that triggers a replan, percentage points.
pub const DEFAULT_REPLAN_SOC_DRIFT_PERCENT: f64 = 5.0;
/// Built-in poll interval while plugged in at a controlled location.
/// Block edges, confirmations and replans get polls of their own (see
/// `daemon::fleet`), so this only catches what nothing announces (an
/// early unplug, a driver's hand, SoC drift): every 30 minutes keeps a
/// vehicle-day within the request budget README's table shows.
pub const DEFAULT_POLL_FAST: Duration = Duration::from_secs(1800);
/// Built-in poll interval while unplugged or away: how late a plug-in is
/// seen without webhooks (half of it on average).
pub const DEFAULT_POLL_SLOW: Duration = Duration::from_secs(1800);

/// The most `[[policy.sites]]` entries: each is planned by one fleet task
/// with a flow network, and a daemon serves a few connections, not a grid.
pub const MAX_SITES: usize = 256;

/// A charging location whose vehicles share one grid connection
/// (`[[policy.sites]]`): the vehicles plugged in there are planned
/// together so that their summed power stays within `max_power_kw`.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The Enode charging-location id the vehicles report.
    pub charging_location: String,
    /// Power available for EV charging at the connection, kW.
    pub max_power_kw: f64,
    /// The zone of the deadlines of vehicles charging there, when it is
    /// not their own (a depot in another zone); `None`: their own.
    pub time_zone: Option<Tz>,
}

/// The settings that apply to one vehicle, resolved to plain values.
/// Compare two of them to see whether a config reload changed a vehicle's
/// policy (and so whether it needs a new plan).
#[derive(Debug, Clone, PartialEq)]
pub struct VehiclePolicy {
    /// Wanted state of charge at the deadline, percent.
    pub target_percent: f64,
    /// Deadline as local time of day, per weekday, Monday first
    /// (`Weekday::num_days_from_monday`).
    pub deadlines: [NaiveTime; 7],
    /// The zone the deadlines are local to; a 07:00 deadline stays 07:00
    /// there across DST.
    pub time_zone: Tz,
    /// Charge to this state of charge at once, whatever it costs, percent.
    pub min_soc_percent: f64,
    /// The most charging blocks (start/stop cycles) per plan; none = no limit.
    pub max_blocks: Option<u32>,
    /// No block shorter than this many minutes, except the last one.
    pub min_block_minutes: Option<u32>,
    /// No pause between two blocks shorter than this many minutes.
    pub min_pause_minutes: Option<u32>,
    /// The last block ends at most this many minutes before the deadline.
    pub finish_by_departure_minutes: Option<u32>,
    /// Charge beyond the target, up to the charge limit, in minutes priced
    /// at or below this (per kWh, the curve's currency).
    pub opportunistic_price: Option<f64>,
    /// Battery energy gained per unit of grid energy, in (0, 1].
    pub efficiency: f64,
    /// Grid power while charging, kW. None: the vehicle's observed charge
    /// rate or the daemon's estimate is used (see [`Observation::from_vehicle`]).
    pub max_power_kw: Option<f64>,
    /// Whether a vehicle with Enode's smart charging enabled is taken over
    /// (the daemon disables Enode's policy) rather than left alone.
    pub take_over_enode_smart_charging: bool,
    /// Whether the deadline of Enode's smart-charging policy (UTC), when it
    /// has one, replaces the local deadlines.
    pub use_enode_deadline: bool,
    /// Enode charging-location ids where control is allowed; empty means
    /// any charging location of the user (see [`VehiclePolicy::allows_location`]).
    pub charging_locations: Arc<[String]>,
    /// Whether a manual start/stop (or a change the daemon did not command)
    /// suspends control until the vehicle is unplugged.
    pub suspend_on_manual_override: bool,
    /// Replan when the observed state of charge differs from the plan's
    /// expectation by more than this, percentage points.
    pub replan_soc_drift_percent: f64,
    /// Poll interval while plugged in at a controlled location.
    pub poll_fast: Duration,
    /// Poll interval while unplugged or away.
    pub poll_slow: Duration,
    /// Which of two equally cheap plans wins.
    pub tie_break: TieBreak,
}

impl VehiclePolicy {
    /// The built-in defaults, with deadlines local to `time_zone`.
    pub fn defaults(time_zone: Tz) -> Self {
        VehiclePolicy {
            target_percent: DEFAULT_TARGET_PERCENT,
            deadlines: [DEFAULT_DEADLINE; 7],
            time_zone,
            min_soc_percent: 0.0,
            max_blocks: None,
            min_block_minutes: None,
            min_pause_minutes: None,
            finish_by_departure_minutes: None,
            opportunistic_price: None,
            efficiency: DEFAULT_EFFICIENCY,
            max_power_kw: None,
            take_over_enode_smart_charging: false,
            use_enode_deadline: false,
            charging_locations: Arc::from([]),
            suspend_on_manual_override: true,
            replan_soc_drift_percent: DEFAULT_REPLAN_SOC_DRIFT_PERCENT,
            poll_fast: DEFAULT_POLL_FAST,
            poll_slow: DEFAULT_POLL_SLOW,
            tie_break: TieBreak::Later,
        }
    }

    /// The local deadline on `day`.
    pub fn deadline_on(&self, day: Weekday) -> NaiveTime {
        self.deadlines[day.num_days_from_monday() as usize]
    }

    /// Whether the daemon may control a vehicle at `charging_location_id`
    /// (the vehicle's `charging_location_id`). Enode reports only charging
    /// locations the user registered, so with no configured list any one
    /// will do; a vehicle at no charging location is never controlled.
    pub fn allows_location(&self, charging_location_id: Option<&str>) -> bool {
        match charging_location_id {
            None => false,
            Some(id) => {
                self.charging_locations.is_empty()
                    || self.charging_locations.iter().any(|l| l == id)
            }
        }
    }

    /// Overwrites what `layer` sets. A layer that sets `deadline` sets
    /// every weekday (its own `deadlines` entries first), so a vehicle's
    /// `deadline = "06:00"` is not undone by a global weekend table.
    fn apply(&mut self, layer: &Layer) {
        fn set<T: Clone>(to: &mut T, from: &Option<T>) {
            if let Some(v) = from {
                *to = v.clone();
            }
        }
        set(&mut self.target_percent, &layer.target_percent);
        for (day, own) in self.deadlines.iter_mut().zip(layer.deadlines) {
            if let Some(t) = own.or(layer.deadline) {
                *day = t;
            }
        }
        set(&mut self.time_zone, &layer.time_zone);
        set(&mut self.min_soc_percent, &layer.min_soc_percent);
        if layer.max_blocks.is_some() {
            self.max_blocks = layer.max_blocks;
        }
        if layer.min_block_minutes.is_some() {
            self.min_block_minutes = layer.min_block_minutes;
        }
        if layer.min_pause_minutes.is_some() {
            self.min_pause_minutes = layer.min_pause_minutes;
        }
        if layer.finish_by_departure_minutes.is_some() {
            self.finish_by_departure_minutes = layer.finish_by_departure_minutes;
        }
        if layer.opportunistic_price.is_some() {
            self.opportunistic_price = layer.opportunistic_price;
        }
        set(&mut self.efficiency, &layer.efficiency);
        if layer.max_power_kw.is_some() {
            self.max_power_kw = layer.max_power_kw;
        }
        set(
            &mut self.take_over_enode_smart_charging,
            &layer.take_over_enode_smart_charging,
        );
        set(&mut self.use_enode_deadline, &layer.use_enode_deadline);
        set(&mut self.charging_locations, &layer.charging_locations);
        set(
            &mut self.suspend_on_manual_override,
            &layer.suspend_on_manual_override,
        );
        set(
            &mut self.replan_soc_drift_percent,
            &layer.replan_soc_drift_percent,
        );
        set(&mut self.poll_fast, &layer.poll_fast);
        set(&mut self.poll_slow, &layer.poll_slow);
        set(&mut self.tie_break, &layer.tie_break);
    }
}

/// The validated `[policy]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Built-in defaults with the global settings applied.
    global: VehiclePolicy,
    /// What `[policy]` itself sets (for [`PolicyConfig::sources`]).
    global_layer: Layer,
    /// `[[policy.users]]` by user id.
    users: HashMap<String, Layer>,
    /// `[[policy.vehicles]]` by Enode vehicle id.
    vehicles: HashMap<String, Layer>,
    /// `[[policy.sites]]` by charging-location id.
    sites: HashMap<String, Site>,
}

impl Default for PolicyConfig {
    /// No `[policy]` section and no `[prices]` zone: built-in defaults, UTC.
    fn default() -> Self {
        PolicyConfig::from_layers(Tz::UTC, Layer::default(), HashMap::new(), HashMap::new())
    }
}

impl PolicyConfig {
    /// The global policy over built-in defaults in `default_tz`, and the
    /// overrides.
    fn from_layers(
        default_tz: Tz,
        global: Layer,
        users: HashMap<String, Layer>,
        vehicles: HashMap<String, Layer>,
    ) -> Self {
        let mut base = VehiclePolicy::defaults(default_tz);
        base.apply(&global);
        PolicyConfig {
            global: base,
            global_layer: global,
            users,
            vehicles,
            sites: HashMap::new(),
        }
    }

    /// The shared connection at `charging_location`, if one is configured.
    pub fn site(&self, charging_location: Option<&str>) -> Option<&Site> {
        self.sites.get(charging_location?)
    }

    /// How many shared connections are configured.
    pub fn site_count(&self) -> usize {
        self.sites.len()
    }

    /// The policy of `vehicle` of `user`: vehicle override, then user
    /// override, then global, then built-in default, per setting. Two hash
    /// lookups and a copy, cheap enough for every poll.
    pub fn for_vehicle(&self, user: &str, vehicle: &str) -> VehiclePolicy {
        let mut p = self.global.clone();
        if let Some(l) = self.users.get(user) {
            p.apply(l);
        }
        if let Some(l) = self.vehicles.get(vehicle) {
            p.apply(l);
        }
        p
    }

    /// Where each setting of `vehicle`'s policy comes from: (key, source),
    /// the source being "vehicle", "user", "global" or "default" (the most
    /// specific level that sets it), in the config's key order.
    pub fn sources(&self, user: &str, vehicle: &str) -> Vec<(&'static str, &'static str)> {
        let layers = [
            ("vehicle", self.vehicles.get(vehicle)),
            ("user", self.users.get(user)),
            ("global", Some(&self.global_layer)),
        ];
        let from = |set: &dyn Fn(&Layer) -> bool| {
            layers
                .iter()
                .find(|(_, l)| l.is_some_and(set))
                .map_or("default", |(name, _)| name)
        };
        macro_rules! keys {
            ($($key:ident),* $(,)?) => {
                vec![$((stringify!($key), from(&|l: &Layer| l.$key.is_some()))),*]
            };
        }
        let mut out = keys!(
            target_percent,
            time_zone,
            min_soc_percent,
            max_blocks,
            min_block_minutes,
            min_pause_minutes,
            finish_by_departure_minutes,
            opportunistic_price,
            efficiency,
            max_power_kw,
            take_over_enode_smart_charging,
            use_enode_deadline,
            charging_locations,
            suspend_on_manual_override,
            replan_soc_drift_percent,
            poll_fast,
            poll_slow,
            tie_break,
        );
        out.insert(
            1,
            (
                "deadlines",
                from(&|l: &Layer| l.deadline.is_some() || l.deadlines.iter().any(Option::is_some)),
            ),
        );
        out
    }

    /// The global policy (what a vehicle without overrides gets).
    pub fn global(&self) -> &VehiclePolicy {
        &self.global
    }
}

/// The settings one level of the config sets; `None` = not set there.
#[derive(Debug, Clone, Default, PartialEq)]
struct Layer {
    /// `target_percent`.
    target_percent: Option<f64>,
    /// `deadline`: every weekday not in `deadlines`.
    deadline: Option<NaiveTime>,
    /// `[deadlines]`, Monday first.
    deadlines: [Option<NaiveTime>; 7],
    /// `time_zone`.
    time_zone: Option<Tz>,
    /// `min_soc_percent`.
    min_soc_percent: Option<f64>,
    /// `max_blocks`.
    max_blocks: Option<u32>,
    /// `min_block_minutes`.
    min_block_minutes: Option<u32>,
    /// `min_pause_minutes`.
    min_pause_minutes: Option<u32>,
    /// `finish_by_departure_minutes`.
    finish_by_departure_minutes: Option<u32>,
    /// `opportunistic_price`.
    opportunistic_price: Option<f64>,
    /// `efficiency`.
    efficiency: Option<f64>,
    /// `max_power_kw`.
    max_power_kw: Option<f64>,
    /// `take_over_enode_smart_charging`.
    take_over_enode_smart_charging: Option<bool>,
    /// `use_enode_deadline`.
    use_enode_deadline: Option<bool>,
    /// `charging_locations`.
    charging_locations: Option<Arc<[String]>>,
    /// `suspend_on_manual_override`.
    suspend_on_manual_override: Option<bool>,
    /// `replan_soc_drift_percent`.
    replan_soc_drift_percent: Option<f64>,
    /// `poll_fast`.
    poll_fast: Option<Duration>,
    /// `poll_slow`.
    poll_slow: Option<Duration>,
    /// `tie_break`.
    tie_break: Option<TieBreak>,
}

#[cfg(test)]
mod tests;
