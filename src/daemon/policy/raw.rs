//! The `[policy]` section as written, and its validation into layers.
//!
//! The global table, every `[[policy.users]]` entry and every
//! `[[policy.vehicles]]` entry accept the same settings. serde's `flatten`
//! would lose both `deny_unknown_fields` and the spans of `toml::Spanned`, so
//! one macro writes the setting fields into all three structs instead, and
//! validates them into a [`Layer`] of plain values.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;
use planner::TieBreak;
use serde::Deserialize;
use toml::Spanned;

use super::{Layer, PolicyConfig, Site, MAX_SITES};
use crate::config::{bounded_duration, FieldError};

type S<T> = Option<Spanned<T>>;

/// Declares a raw settings struct: the given extra fields, then every
/// setting, plus `fn layer` validating the settings into a [`Layer`].
macro_rules! settings_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Wanted state of charge at the deadline, percent.
            pub target_percent: S<f64>,
            /// Deadline as local time of day, "HH:MM".
            pub deadline: S<String>,
            /// Per-weekday deadlines; missing days use `deadline`.
            pub deadlines: Option<RawDeadlines>,
            /// IANA time zone of the deadlines.
            pub time_zone: S<String>,
            /// Charge to this state of charge at once, whatever it costs.
            pub min_soc_percent: S<f64>,
            /// The most charging blocks per plan.
            pub max_blocks: S<u32>,
            /// No block shorter than this many minutes (except the last).
            pub min_block_minutes: S<u32>,
            /// No pause between two blocks shorter than this many minutes.
            pub min_pause_minutes: S<u32>,
            /// The last block ends at most this many minutes before the deadline.
            pub finish_by_departure_minutes: S<u32>,
            /// Charge beyond the target, up to the charge limit, at or below this price.
            pub opportunistic_price: S<f64>,
            /// Battery energy per grid energy, in (0, 1].
            pub efficiency: S<f64>,
            /// Grid power while charging, kW; else observed or estimated.
            pub max_power_kw: S<f64>,
            /// Disable Enode's own smart charging and control the vehicle.
            pub take_over_enode_smart_charging: Option<bool>,
            /// Use the deadline of Enode's smart-charging policy (UTC).
            pub use_enode_deadline: Option<bool>,
            /// Enode charging-location ids where control is allowed.
            pub charging_locations: Option<Vec<Spanned<String>>>,
            /// Leave the vehicle alone after a manual start/stop until unplugged.
            pub suspend_on_manual_override: Option<bool>,
            /// Replan when the observed SoC drifts this far from the plan, percent.
            pub replan_soc_drift_percent: S<f64>,
            /// Poll interval while plugged in at a controlled location.
            pub poll_fast: S<String>,
            /// Poll interval while unplugged or away.
            pub poll_slow: S<String>,
            /// "later" or "earlier": which of two equally cheap plans wins.
            pub tie_break: S<String>,
        }

        impl $name {
            /// Validates the settings of this table into plain values.
            fn layer(&self) -> Result<Layer, FieldError> {
                Ok(Layer {
                    target_percent: opt(&self.target_percent, |s| percent(s, "target_percent"))?,
                    deadline: opt(&self.deadline, hhmm)?,
                    deadlines: match &self.deadlines {
                        Some(d) => d.days()?,
                        None => [None; 7],
                    },
                    time_zone: opt(&self.time_zone, time_zone)?,
                    min_soc_percent: opt(&self.min_soc_percent, |s| percent(s, "min_soc_percent"))?,
                    max_blocks: opt(&self.max_blocks, max_blocks)?,
                    min_block_minutes: opt(&self.min_block_minutes, min_block_minutes)?,
                    min_pause_minutes: opt(&self.min_pause_minutes, |s| minutes(s, "min_pause_minutes", 0))?,
                    finish_by_departure_minutes: opt(&self.finish_by_departure_minutes, |s| minutes(s, "finish_by_departure_minutes", 0))?,
                    opportunistic_price: opt(&self.opportunistic_price, price)?,
                    efficiency: opt(&self.efficiency, efficiency)?,
                    max_power_kw: opt(&self.max_power_kw, power)?,
                    take_over_enode_smart_charging: self.take_over_enode_smart_charging,
                    use_enode_deadline: self.use_enode_deadline,
                    charging_locations: self
                        .charging_locations
                        .as_deref()
                        .map(locations)
                        .transpose()?,
                    suspend_on_manual_override: self.suspend_on_manual_override,
                    replan_soc_drift_percent: opt(&self.replan_soc_drift_percent, drift)?,
                    poll_fast: opt(&self.poll_fast, |s| interval(s, &crate::limits::POLL_FAST))?,
                    poll_slow: opt(&self.poll_slow, |s| interval(s, &crate::limits::POLL_SLOW))?,
                    tie_break: opt(&self.tie_break, tie_break)?,
                })
            }
        }
    };
}

settings_struct! {
    /// `[policy]` as written: global settings, then per-user and per-vehicle
    /// overrides.
    #[derive(Debug, Default, Deserialize)]
    RawPolicyConfig {
        /// `[[policy.users]]`: overrides for all vehicles of one user.
        #[serde(default)]
        users: Vec<RawUserPolicy>,
        /// `[[policy.vehicles]]`: overrides for one vehicle.
        #[serde(default)]
        vehicles: Vec<RawVehiclePolicy>,
        /// `[[policy.sites]]`: charging locations whose vehicles share one
        /// connection.
        #[serde(default)]
        sites: Vec<RawSite>,
    }
}

/// One `[[policy.sites]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    /// The Enode charging-location id the vehicles share.
    pub charging_location: Spanned<String>,
    /// Power available for EV charging at the connection, kW.
    pub max_power_kw: Spanned<f64>,
    /// IANA zone of the deadlines of vehicles charging there.
    pub time_zone: S<String>,
}

settings_struct! {
    /// One `[[policy.users]]` entry as written.
    #[derive(Debug, Deserialize)]
    RawUserPolicy {
        /// The user id chosen when linking.
        id: Spanned<String>,
    }
}

settings_struct! {
    /// One `[[policy.vehicles]]` entry as written.
    #[derive(Debug, Deserialize)]
    RawVehiclePolicy {
        /// Enode's vehicle id.
        id: Spanned<String>,
    }
}

/// `[policy.deadlines]` (or `deadlines = { ... }` in an override) as
/// written: one local time of day per weekday.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeadlines {
    /// Monday.
    pub mon: S<String>,
    /// Tuesday.
    pub tue: S<String>,
    /// Wednesday.
    pub wed: S<String>,
    /// Thursday.
    pub thu: S<String>,
    /// Friday.
    pub fri: S<String>,
    /// Saturday.
    pub sat: S<String>,
    /// Sunday.
    pub sun: S<String>,
}

impl RawDeadlines {
    /// The days, Monday first.
    fn days(&self) -> Result<[Option<NaiveTime>; 7], FieldError> {
        let raw = [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ];
        let mut out = [None; 7];
        for (slot, day) in out.iter_mut().zip(raw) {
            *slot = opt(day, hhmm)?;
        }
        Ok(out)
    }
}

impl RawPolicyConfig {
    /// Validates the section. `default_tz` is the zone used when no level
    /// sets `time_zone`: the daemon passes the `[prices]` zone, so one
    /// `time_zone` in the config serves both; without one it is UTC.
    pub fn validate(self, default_tz: Option<Tz>) -> Result<PolicyConfig, FieldError> {
        let global = self.layer()?;
        let users = overrides(self.users.iter().map(|u| (&u.id, u.layer())), "users")?;
        let vehicles = overrides(self.vehicles.iter().map(|v| (&v.id, v.layer())), "vehicles")?;
        let sites = sites(&self.sites)?;
        let mut config =
            PolicyConfig::from_layers(default_tz.unwrap_or(Tz::UTC), global, users, vehicles);
        config.sites = sites;
        Ok(config)
    }
}

/// Validates `[[policy.sites]]`: an Enode id (the grammar of
/// [`crate::limits::enode_id_ok`]) at most once, a power in
/// (0, [`planner::MAX_SITE_LIMIT_KW`]], an IANA zone.
fn sites(list: &[RawSite]) -> Result<HashMap<String, Site>, FieldError> {
    if list.len() > MAX_SITES {
        return Err(err(
            &list[MAX_SITES].charging_location,
            format!("more than {MAX_SITES} [[policy.sites]]"),
            "a daemon plans at most this many shared connections",
        ));
    }
    let mut out = HashMap::new();
    for raw in list {
        let at = &raw.charging_location;
        let id = at.get_ref().trim();
        if !crate::limits::enode_id_ok(id) {
            return Err(err(
                at,
                format!(
                    "charging_location `{}` is not an Enode id",
                    crate::limits::clip(at.get_ref())
                ),
                format!(
                    "write the charging location's id (1-{} bytes, no control characters) as Enode reports it",
                    crate::limits::ENODE_ID_MAX
                ),
            ));
        }
        let kw = *raw.max_power_kw.get_ref();
        if !(kw.is_finite() && kw > 0.0 && kw <= planner::MAX_SITE_LIMIT_KW) {
            return Err(err(
                &raw.max_power_kw,
                format!(
                    "site max_power_kw {kw} is not in (0, {}]",
                    planner::MAX_SITE_LIMIT_KW
                ),
                "write the power the connection has for charging, in kW, e.g. 11",
            ));
        }
        let site = Site {
            charging_location: id.to_owned(),
            max_power_kw: kw,
            time_zone: opt(&raw.time_zone, time_zone)?,
        };
        if out.insert(id.to_owned(), site).is_some() {
            return Err(err(
                at,
                format!("[[policy.sites]] charging_location `{id}` appears twice"),
                "one entry per shared connection",
            ));
        }
    }
    Ok(out)
}

/// Validates override entries, rejecting empty and repeated ids.
fn overrides<'a>(
    entries: impl Iterator<Item = (&'a Spanned<String>, Result<Layer, FieldError>)>,
    table: &str,
) -> Result<HashMap<String, Layer>, FieldError> {
    let mut out = HashMap::new();
    for (id, layer) in entries {
        let key = id.get_ref().trim();
        if key.is_empty() {
            return Err(FieldError::at(
                id.span(),
                format!("[[policy.{table}]] id is empty"),
                "write the id the override is for",
            ));
        }
        let layer = layer?;
        if out.insert(key.to_owned(), layer).is_some() {
            return Err(FieldError::at(
                id.span(),
                format!("[[policy.{table}]] id `{key}` appears twice"),
                "merge the two entries into one",
            ));
        }
    }
    Ok(out)
}

/// Validates an optional spanned value.
fn opt<T, U>(
    v: &S<T>,
    check: impl FnOnce(&Spanned<T>) -> Result<U, FieldError>,
) -> Result<Option<U>, FieldError> {
    v.as_ref().map(check).transpose()
}

fn err<T>(s: &Spanned<T>, message: impl Into<String>, help: impl Into<String>) -> FieldError {
    FieldError::at(s.span(), message, help)
}

fn percent(s: &Spanned<f64>, key: &str) -> Result<f64, FieldError> {
    let v = *s.get_ref();
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(err(
            s,
            format!("{key} {v} is not between 0 and 100"),
            "write a percentage such as 80",
        ))
    }
}

fn hhmm(s: &Spanned<String>) -> Result<NaiveTime, FieldError> {
    NaiveTime::parse_from_str(s.get_ref().trim(), "%H:%M").map_err(|_| {
        err(
            s,
            format!("`{}` is not a time of day", s.get_ref()),
            "write local time as \"HH:MM\", e.g. \"07:00\"",
        )
    })
}

fn time_zone(s: &Spanned<String>) -> Result<Tz, FieldError> {
    s.get_ref().trim().parse().map_err(|_| {
        err(
            s,
            format!("`{}` is not an IANA time zone", s.get_ref()),
            "write e.g. \"Europe/Berlin\"",
        )
    })
}

fn max_blocks(s: &Spanned<u32>) -> Result<u32, FieldError> {
    let v = *s.get_ref();
    if (1..=planner::MAX_BLOCKS_LIMIT).contains(&v) {
        Ok(v)
    } else {
        Err(err(
            s,
            format!(
                "max_blocks {v} is not between 1 and {}",
                planner::MAX_BLOCKS_LIMIT
            ),
            "leave it out for no limit",
        ))
    }
}

fn min_block_minutes(s: &Spanned<u32>) -> Result<u32, FieldError> {
    match *s.get_ref() {
        0 => Err(err(
            s,
            "min_block_minutes is zero",
            "leave it out for no minimum, or write e.g. 30",
        )),
        _ => minutes(s, "min_block_minutes", 1),
    }
}

/// A number of minutes from `min` to a week (the planner's horizon).
fn minutes(s: &Spanned<u32>, key: &str, min: u32) -> Result<u32, FieldError> {
    let v = *s.get_ref();
    if (min..=planner::MAX_MINUTES).contains(&v) {
        Ok(v)
    } else {
        Err(err(
            s,
            format!(
                "{key} {v} is not between {min} and {}",
                planner::MAX_MINUTES
            ),
            "write minutes, e.g. 30",
        ))
    }
}

fn price(s: &Spanned<f64>) -> Result<f64, FieldError> {
    let v = *s.get_ref();
    if v.is_finite() && v.abs() <= planner::MAX_ABS_PRICE {
        Ok(v)
    } else {
        Err(err(
            s,
            format!("opportunistic_price {v} is out of range"),
            "write a price per kWh in the curve's currency, e.g. 0.05",
        ))
    }
}

fn efficiency(s: &Spanned<f64>) -> Result<f64, FieldError> {
    let v = *s.get_ref();
    if (planner::MIN_EFFICIENCY..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(err(
            s,
            format!("efficiency {v} is not in [{}, 1]", planner::MIN_EFFICIENCY),
            "write the share of grid energy that reaches the battery, e.g. 0.9",
        ))
    }
}

fn power(s: &Spanned<f64>) -> Result<f64, FieldError> {
    let v = *s.get_ref();
    if v > 0.0 && v <= planner::MAX_POWER_KW {
        Ok(v)
    } else {
        Err(err(
            s,
            format!("max_power_kw {v} is not in (0, {}]", planner::MAX_POWER_KW),
            "write the charger's power in kW, e.g. 11, or leave it out to use the observed rate",
        ))
    }
}

fn drift(s: &Spanned<f64>) -> Result<f64, FieldError> {
    let v = *s.get_ref();
    if v > 0.0 && v <= 100.0 {
        Ok(v)
    } else {
        Err(err(
            s,
            format!("replan_soc_drift_percent {v} is not in (0, 100]"),
            "write percentage points, e.g. 5",
        ))
    }
}

fn interval(s: &Spanned<String>, bounds: &crate::limits::Bounds) -> Result<Duration, FieldError> {
    bounded_duration(s, bounds)
}

fn tie_break(s: &Spanned<String>) -> Result<TieBreak, FieldError> {
    match s.get_ref().trim() {
        "later" => Ok(TieBreak::Later),
        "earlier" => Ok(TieBreak::Earlier),
        other => Err(err(
            s,
            format!("unknown tie_break `{other}`"),
            "use \"later\" or \"earlier\"",
        )),
    }
}

fn locations(list: &[Spanned<String>]) -> Result<Arc<[String]>, FieldError> {
    list.iter()
        .map(|s| match s.get_ref().trim() {
            "" => Err(err(
                s,
                "charging location id is empty",
                "write Enode charging-location ids, or an empty list for any of the user's",
            )),
            id => Ok(id.to_owned()),
        })
        .collect()
}
