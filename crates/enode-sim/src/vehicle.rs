//! One simulated vehicle: battery, plug, location and charging intent.
//!
//! The state of charge is a linear function of time between state changes
//! (an "anchor"): reads compute it from the clock without mutating, so the
//! result is exact under paused or scaled time however often it is polled.
//! Scheduled scenario events are applied lazily, in order, at their own
//! instants, the next time anyone looks at the vehicle.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// Why the vehicle charges or not, as far as the last actor is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Nobody in particular: plug-in default or an API command.
    Default,
    /// The driver started charging by hand.
    ManuallyStarted,
    /// The driver stopped charging by hand.
    ManuallyStopped,
    /// Enode's smart charging holds charging off.
    SmartChargingDelay,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Default => "DEFAULT",
            Reason::ManuallyStarted => "MANUALLY_STARTED",
            Reason::ManuallyStopped => "MANUALLY_STOPPED",
            Reason::SmartChargingDelay => "SMART_CHARGING_DELAY",
        }
    }
}

/// Something that changes a vehicle's state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    PlugIn,
    Unplug,
    DriverStart,
    DriverStop,
    ApiStart,
    ApiStop,
    /// Arrive at a location (`None`: away).
    MoveTo(Option<String>),
    SetSoc(f64),
}

/// A scheduled action.
#[derive(Debug, Clone)]
pub(crate) struct Timed {
    /// When it happens.
    pub at: DateTime<Utc>,
    /// What happens, in order.
    pub actions: Vec<Action>,
}

/// A stretch of time during which a vehicle charged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeSegment {
    /// Charging began.
    pub from: DateTime<Utc>,
    /// Charging ended (stopped, unplugged or reached the limit).
    pub to: DateTime<Utc>,
    /// Energy delivered into the battery, kWh.
    pub kwh: f64,
}

/// A simulated vehicle.
#[derive(Debug, Clone)]
pub(crate) struct Vehicle {
    /// Vehicle id.
    pub id: String,
    /// Owner's user id.
    pub user: String,
    /// Vendor enum value.
    pub vendor: String,
    /// Brand for `information`.
    pub brand: String,
    /// Model for `information`.
    pub model: String,
    /// Model year.
    pub year: i32,
    /// Battery capacity, kWh.
    pub capacity_kwh: f64,
    /// Charge power while charging, kW.
    pub charge_kw: f64,
    /// Charge limit, percent.
    pub charge_limit: f64,
    /// Report batteryLevel/range as numeric strings.
    pub numeric_strings: bool,
    /// Plugging in starts charging.
    pub charge_on_plug_in: bool,
    /// Odometer, km.
    pub odometer_km: f64,
    /// Enode smart charging enabled.
    pub policy_enabled: bool,
    /// Whether Enode can reach the vehicle (`isReachable`); tests turn it off.
    pub reachable: bool,
    /// Enode smart charging deadline "HH:MM" UTC.
    pub policy_deadline: String,
    /// Charging location id, or `None` when away.
    pub location: Option<String>,
    /// Cable connected.
    pub plugged_in: bool,
    /// Charging is wanted (by command, driver or plug-in default); it
    /// happens while plugged in and below the limit.
    pub wants_charge: bool,
    /// Last actor's reason.
    pub reason: Reason,
    /// Instant of the last state change.
    pub anchor: DateTime<Utc>,
    /// Battery level at `anchor`, percent.
    pub soc_at_anchor: f64,
    /// Pending scheduled events, sorted by time.
    pub events: VecDeque<Timed>,
    /// Energy delivered so far, kWh.
    pub energy_kwh: f64,
    /// Where the energy went in time.
    pub segments: Vec<ChargeSegment>,
}

fn secs(d: TimeDelta) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

impl Vehicle {
    /// Percent per second while charging.
    fn rate(&self) -> f64 {
        self.charge_kw / self.capacity_kwh * 100.0 / 3600.0
    }

    /// Whether the battery is filling since `anchor`.
    fn filling(&self) -> bool {
        self.wants_charge && self.plugged_in && self.soc_at_anchor < self.charge_limit
    }

    /// Battery level at `t` (not before `anchor`), percent.
    pub fn soc_at(&self, t: DateTime<Utc>) -> f64 {
        if !self.filling() || t <= self.anchor {
            return self.soc_at_anchor;
        }
        (self.soc_at_anchor + self.rate() * secs(t - self.anchor)).min(self.charge_limit)
    }

    /// Whether the vehicle is charging at `t`.
    pub fn charging_at(&self, t: DateTime<Utc>) -> bool {
        self.filling() && self.soc_at(t) < self.charge_limit
    }

    /// Seconds of charging left at `t` until the limit, if charging.
    pub fn seconds_to_limit(&self, t: DateTime<Utc>) -> Option<f64> {
        self.charging_at(t)
            .then(|| (self.charge_limit - self.soc_at(t)) / self.rate())
    }

    /// `isChargingReasons` at `t`.
    pub fn reasons_at(&self, t: DateTime<Utc>) -> &'static str {
        if !self.plugged_in {
            "NOT_PLUGGED_IN"
        } else if self.wants_charge && self.soc_at(t) >= self.charge_limit {
            "FULLY_CHARGED"
        } else {
            self.reason.as_str()
        }
    }

    /// Applies every scheduled event up to `now`, each at its own instant.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        while self.events.front().is_some_and(|e| e.at <= now) {
            let e = self.events.pop_front().expect("checked");
            let at = e.at.max(self.anchor);
            for a in e.actions {
                self.apply(at, a);
            }
        }
    }

    /// Moves the anchor to `t`, booking the energy charged since the last.
    fn reanchor(&mut self, t: DateTime<Utc>) {
        if t <= self.anchor {
            return;
        }
        let soc = self.soc_at(t);
        if self.filling() && soc > self.soc_at_anchor {
            let secs_charging = (soc - self.soc_at_anchor) / self.rate();
            let to = (self.anchor + TimeDelta::microseconds((secs_charging * 1e6).round() as i64))
                .min(t);
            let kwh = (soc - self.soc_at_anchor) / 100.0 * self.capacity_kwh;
            self.energy_kwh += kwh;
            match self.segments.last_mut() {
                Some(last) if last.to == self.anchor => {
                    last.to = to;
                    last.kwh += kwh;
                }
                _ => self.segments.push(ChargeSegment {
                    from: self.anchor,
                    to,
                    kwh,
                }),
            }
        }
        self.soc_at_anchor = soc;
        self.anchor = t;
    }

    /// Applies `action` at instant `t` (not before the anchor).
    pub fn apply(&mut self, t: DateTime<Utc>, action: Action) {
        self.reanchor(t);
        match action {
            Action::PlugIn => {
                if !self.plugged_in {
                    self.plugged_in = true;
                    if self.policy_enabled {
                        self.wants_charge = false;
                        self.reason = Reason::SmartChargingDelay;
                    } else {
                        self.wants_charge = self.charge_on_plug_in;
                        self.reason = Reason::Default;
                    }
                }
            }
            Action::Unplug => {
                self.plugged_in = false;
                self.wants_charge = false;
                self.reason = Reason::Default;
            }
            Action::DriverStart if self.plugged_in => {
                self.wants_charge = true;
                self.reason = Reason::ManuallyStarted;
            }
            Action::DriverStop if self.plugged_in => {
                self.wants_charge = false;
                self.reason = Reason::ManuallyStopped;
            }
            Action::DriverStart | Action::DriverStop => {}
            Action::ApiStart => {
                self.wants_charge = true;
                self.reason = Reason::Default;
            }
            Action::ApiStop => {
                self.wants_charge = false;
                self.reason = Reason::Default;
            }
            Action::MoveTo(loc) => {
                if loc != self.location {
                    // Driving somewhere else takes the cable out.
                    self.plugged_in = false;
                    self.wants_charge = false;
                    self.reason = Reason::Default;
                }
                self.location = loc;
            }
            Action::SetSoc(s) => self.soc_at_anchor = s.clamp(0.0, 100.0),
        }
    }

    /// Books the energy charged up to `now` so that `energy_kwh` and
    /// `segments` are current (for snapshots).
    pub fn settle(&mut self, now: DateTime<Utc>) {
        self.advance(now);
        self.reanchor(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 18, 0, 0).unwrap()
    }

    fn car() -> Vehicle {
        Vehicle {
            id: "v".into(),
            user: "u".into(),
            vendor: "TESLA".into(),
            brand: "Tesla".into(),
            model: "Model 3".into(),
            year: 2021,
            capacity_kwh: 50.0,
            charge_kw: 10.0,
            charge_limit: 80.0,
            numeric_strings: false,
            charge_on_plug_in: false,
            odometer_km: 0.0,
            policy_enabled: false,
            reachable: true,
            policy_deadline: "07:00".into(),
            location: Some("home".into()),
            plugged_in: true,
            wants_charge: false,
            reason: Reason::Default,
            anchor: t0(),
            soc_at_anchor: 40.0,
            events: VecDeque::new(),
            energy_kwh: 0.0,
            segments: Vec::new(),
        }
    }

    #[test]
    fn charges_linearly_to_the_limit_and_books_energy() {
        let mut v = car();
        v.apply(t0(), Action::ApiStart);
        // 10 kW into 50 kWh is 20 %/h: 40 -> 80 % takes 2 h.
        assert_eq!(v.soc_at(t0() + TimeDelta::hours(1)), 60.0);
        assert!(v.charging_at(t0() + TimeDelta::hours(1)));
        assert_eq!(v.soc_at(t0() + TimeDelta::hours(3)), 80.0);
        assert!(!v.charging_at(t0() + TimeDelta::hours(3)));
        assert_eq!(v.reasons_at(t0() + TimeDelta::hours(3)), "FULLY_CHARGED");
        v.settle(t0() + TimeDelta::hours(3));
        assert!((v.energy_kwh - 20.0).abs() < 1e-9);
        assert_eq!(v.segments.len(), 1);
        assert_eq!(v.segments[0].to, t0() + TimeDelta::hours(2));
    }

    #[test]
    fn scheduled_events_apply_at_their_own_instant() {
        let mut v = car();
        v.plugged_in = false;
        v.charge_on_plug_in = true;
        v.events.push_back(Timed {
            at: t0() + TimeDelta::minutes(30),
            actions: vec![Action::PlugIn],
        });
        v.advance(t0() + TimeDelta::hours(1));
        assert!(v.plugged_in);
        assert_eq!(v.soc_at(t0() + TimeDelta::hours(1)), 50.0);
    }
}
