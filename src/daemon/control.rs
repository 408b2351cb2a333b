//! The per-vehicle controller, without I/O (sans-IO): it takes observations
//! and the time, and answers what to do next. The fleet task does the I/O.
//!
//! It is a reconcile loop (invariant 6): from the plan and the last
//! observed state it derives the desired charging state and asks for a
//! command only when the two differ. Commands are idempotent, so a restart,
//! a missed tick or a duplicate observation never does harm.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{ChargeAction, Vehicle};

mod explain;

pub use explain::{explain, Context, Explanation, Why};

/// After a command, poll again this soon to confirm it took effect.
pub const CONFIRM_AFTER: TimeDelta = TimeDelta::seconds(30);
/// A command not visible after this long is sent again.
pub const CONFIRM_TIMEOUT: TimeDelta = TimeDelta::seconds(150);
/// Sends of one command before the vehicle is marked unresponsive.
pub const MAX_ATTEMPTS: u32 = 3;
/// A plan older than this is made again (a periodic sweep), to pick up
/// anything the other triggers missed; see [`ActivePlan::still_good`] for
/// why the new plan is not always taken.
pub const SWEEP: TimeDelta = TimeDelta::hours(1);
/// A swept plan replaces the current one only if it saves more than this
/// share of the rest of the current plan's cost (and at least 0.01).
pub const SWEEP_MARGIN: f64 = 0.01;
/// Replan when the observed charge power differs from the plan's by more
/// than this share (the first plan may have had to assume a power).
pub const POWER_DRIFT: f64 = 0.15;
/// A plan's deadline is the driver's departure, when the plug state is
/// most likely to change: from the deadline on nothing is commanded until
/// an observation made this long after it shows whether the car is still
/// there (the fleet polls then). Deciding the departure on the poll made
/// shortly before it sent STOPs to cars that had just been unplugged; a
/// car that stays charges on for at most this long before it is stopped.
pub const DEPARTURE_SETTLE: TimeDelta = TimeDelta::minutes(2);

/// What the daemon remembers about one vehicle; stored, so a restart
/// resumes where it was. Fields added later default when an older record
/// lacks them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlState {
    /// Plugged in at a controlled location at the last observation.
    pub session: bool,
    /// The plan for the current plug-in session.
    pub plan: Option<ActivePlan>,
    /// Why control is suspended (driver override), until unplugged.
    pub suspended: Option<String>,
    /// The last command sent, until confirmed or given up.
    pub pending: Option<Pending>,
    /// `isCharging` at the last observation.
    pub charging: Option<bool>,
    /// SoC at the last observation, percent.
    pub soc: Option<f64>,
    /// Estimated grid power while charging, kW (from chargeRate or SoC rise).
    pub power_kw: Option<f64>,
    /// The vehicle did not follow commands; control stops until unplugged.
    pub unresponsive: bool,
    /// Enode smart charging is on and not taken over: logged once per session.
    pub enode_noted: bool,
    /// Enode reported the vehicle unreachable at the last observation.
    pub unreachable: bool,
    /// When the last observation was made.
    pub observed_at: Option<DateTime<Utc>>,
    /// Attempts to disable Enode's smart charging (take-over), bounded like
    /// a command; kept across unplugged polls, cleared at plug-in.
    pub takeover: Option<Pending>,
    /// An operator's override of the plan (admin socket), until its limit
    /// or the unplug.
    #[serde(rename = "override")]
    pub steer: Option<Override>,
    /// A one-off departure for the current or next plug-in session.
    pub trip: Option<Trip>,
    /// A new plan was asked for (replan, a trip, an override ended).
    pub replan: Option<String>,
    /// The plug-in session's energy and cost so far (written with the
    /// rest of the state, not at every poll).
    pub log: Option<super::sessions::SessionLog>,
    /// How the vehicle behaved at its last plug-in, before any command of
    /// ours: `Some(true)` it waited (plugged in, not charging), `Some(false)`
    /// it started charging by itself, `None` not known yet. Kept across
    /// unplugs: without webhooks the fleet moves the polls of a user whose
    /// vehicles all wait into the cheap hours ([`ControlState::waits`]);
    /// a self-starter seen late in a dear hour has charged there.
    pub waits_on_plug_in: Option<bool>,
}

/// What an operator asked of one vehicle instead of its plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// Charge now, or stay stopped.
    pub mode: OverrideMode,
    /// Ends at this instant.
    pub until: Option<DateTime<Utc>>,
    /// Charge-now ends at this state of charge, percent.
    pub soc: Option<f64>,
    /// When it was set.
    pub set_at: DateTime<Utc>,
    /// Who set it (the socket peer).
    pub by: String,
}

/// The two overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverrideMode {
    /// Charge at once, whatever the price.
    ChargeNow,
    /// Do not charge.
    Stop,
}

impl OverrideMode {
    /// "charge-now" / "stop", as the CLI spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideMode::ChargeNow => "charge-now",
            OverrideMode::Stop => "stop",
        }
    }
}

/// A one-off departure: the deadline and target of one plug-in session,
/// after which the weekly policy resumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    /// The departure: the session's deadline.
    pub depart: DateTime<Utc>,
    /// The state of charge wanted then, percent (none: the policy's).
    pub target_percent: Option<f64>,
    /// When it was set.
    pub set_at: DateTime<Utc>,
    /// Who set it (the socket peer).
    pub by: String,
    /// Its session has begun (set while plugged in, or plugged in since):
    /// it ends with that session's unplug. A trip set while unplugged
    /// waits for the next plug-in.
    pub in_session: bool,
}

/// A plan in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivePlan {
    /// The planner's answer.
    pub plan: planner::Plan,
    /// When it was made.
    pub made_at: DateTime<Utc>,
    /// The deadline it plans for.
    pub deadline: DateTime<Utc>,
    /// SoC when it was made, percent.
    pub soc_at_plan: f64,
    /// Battery capacity used, kWh.
    pub battery_kwh: f64,
    /// Grid power assumed, kW.
    pub power_kw: f64,
    /// Charging efficiency assumed.
    pub efficiency: f64,
    /// Version of the price curve it used.
    pub prices_version: u64,
}

/// The reason [`ControlState::decide`] gives for a periodic sweep.
pub const SWEEP_REASON: &str = "periodic sweep";
/// The reason of a START at a planned block's start.
pub const BLOCK_STARTS: &str = "block starts";
/// The reason of a STOP at a planned block's end.
pub const BLOCK_ENDS: &str = "block ends";

impl ActivePlan {
    /// Cost and energy of what is left of the plan from `now` on (blocks
    /// pro rata), for comparing it with a fresh plan.
    pub fn remaining(&self, now: DateTime<Utc>) -> (f64, f64) {
        self.plan
            .blocks
            .iter()
            .filter(|b| b.end > now)
            .fold((0.0, 0.0), |(c, e), b| {
                let len = (b.end - b.start).num_seconds() as f64;
                let left = (b.end - b.start.max(now)).num_seconds() as f64;
                let share = if len > 0.0 { left / len } else { 0.0 };
                (c + b.cost * share, e + b.energy_kwh * share)
            })
    }

    /// Whether the current plan stays in force after a periodic sweep made
    /// `fresh`: it does when what is left of it still delivers the energy
    /// the fresh plan needs (within 1 % or 0.1 kWh) and the fresh plan does
    /// not save more than [`SWEEP_MARGIN`]. Re-planning a running plan from
    /// rounded SoC readings otherwise moves a minute here and there, and
    /// every move is a START/STOP pair.
    pub fn still_good(&self, fresh: &planner::Plan, now: DateTime<Utc>) -> bool {
        let (cost, energy) = self.remaining(now);
        let enough = energy + (0.01 * fresh.energy_kwh).max(0.1) >= fresh.energy_kwh;
        let margin = (SWEEP_MARGIN * cost.abs()).max(0.01);
        enough && fresh.cost > cost - margin
    }
}

/// A command waiting to be seen in an observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// START or STOP.
    pub action: Action,
    /// When it was last sent.
    pub sent_at: DateTime<Utc>,
    /// How often it was sent.
    pub attempts: u32,
}

/// A charging command, stored form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Start charging.
    Start,
    /// Stop charging.
    Stop,
}

impl Action {
    /// The API's action.
    pub fn to_api(self) -> ChargeAction {
        match self {
            Action::Start => ChargeAction::Start,
            Action::Stop => ChargeAction::Stop,
        }
    }

    /// "START" / "STOP", for logs and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "START",
            Action::Stop => "STOP",
        }
    }

    fn charging(self) -> bool {
        self == Action::Start
    }
}

/// What an observation changed, for the log.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A session began: plugged in at a controlled location.
    PluggedIn,
    /// The session ended; suspension and plan are cleared.
    Unplugged,
    /// The driver took over; control is suspended until unplugged.
    Override(String),
    /// A pending command is now visible.
    Confirmed(Action),
    /// An override or trip ended at its limit or the unplug.
    SteeringEnded(String),
}

/// What the controller wants next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing now.
    Idle,
    /// (Re)plan first, then ask again.
    Plan(&'static str),
    /// Send a command.
    Command(Action, &'static str),
    /// Give up on a command that was not followed.
    GiveUp(Action),
}

/// What [`ControlState::takeover_step`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeOver {
    /// Send the PUT that disables Enode's smart charging.
    Send,
    /// One was sent recently; wait for it to show.
    Wait,
    /// The attempts are used up: say so once.
    GiveUp,
    /// Given up earlier; nothing until the next plug-in.
    GaveUp,
}

/// How the fleet sees a vehicle at one observation.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// Plugged in (`None`: unknown).
    pub plugged: Option<bool>,
    /// At a charging location the user pays for.
    pub at_home: bool,
    /// Charging now (`None`: unknown).
    pub charging: Option<bool>,
    /// State of charge, percent.
    pub soc: Option<f64>,
    /// The vehicle's charge limit, percent.
    pub charge_limit: Option<f64>,
    /// Reported charge rate while charging, kW.
    pub charge_rate_kw: Option<f64>,
    /// The driver started or stopped charging by hand (Enode reasons).
    pub manual: bool,
}

impl Seen {
    /// Reads what the controller needs from an API vehicle.
    pub fn from_vehicle(v: &Vehicle, at_home: bool) -> Seen {
        let cs = v.charge_state.as_ref();
        Seen {
            plugged: cs.and_then(|c| c.is_plugged_in),
            at_home,
            charging: cs.and_then(|c| c.is_charging),
            soc: cs.and_then(|c| c.battery_level),
            charge_limit: cs.and_then(|c| c.charge_limit),
            charge_rate_kw: cs.and_then(|c| c.charge_rate_kw),
            manual: cs.is_some_and(|c| c.is_manual_override()),
        }
    }

    fn full(&self) -> bool {
        matches!((self.soc, self.charge_limit), (Some(s), Some(l)) if s >= l - 0.05)
    }
}

impl ControlState {
    /// Takes in an observation. `suspend_on_override` is the policy switch.
    pub fn observe(
        &mut self,
        now: DateTime<Utc>,
        seen: &Seen,
        suspend_on_override: bool,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let in_session = seen.plugged == Some(true) && seen.at_home;
        if !in_session {
            if self.session {
                events.push(Event::Unplugged);
            }
            if let Some(o) = &self.steer {
                events.push(Event::SteeringEnded(format!(
                    "override {} ended: unplugged",
                    o.mode.as_str()
                )));
            }
            // A trip waiting for its session stays; one whose session this
            // was ends with it.
            let trip = match self.trip.take() {
                Some(t) if t.in_session => {
                    events.push(Event::SteeringEnded("trip ended: unplugged".into()));
                    None
                }
                t => t,
            };
            *self = ControlState {
                power_kw: self.power_kw,
                charging: seen.charging,
                soc: seen.soc,
                takeover: self.takeover.take(),
                trip,
                waits_on_plug_in: self.waits_on_plug_in,
                ..ControlState::default()
            };
            self.expire(now, seen, &mut events);
            return events;
        }
        let first = !self.session;
        if first {
            self.session = true;
            self.takeover = None;
            if let Some(t) = self.trip.as_mut() {
                t.in_session = true;
            }
            // Nothing of ours was sent in this session yet, so the car's
            // own doing. A full car does not charge whatever it would
            // do, and an unknown state tells nothing: both keep what was
            // known.
            if let Some(c) = seen.charging.filter(|_| !seen.full()) {
                self.waits_on_plug_in = Some(!c);
            }
            events.push(Event::PluggedIn);
        }
        if let Some(rate) = seen.charge_rate_kw.filter(|r| *r > 0.1) {
            self.power_kw = Some(rate);
        } else if let Some(kw) = self.power_from_soc(now, seen) {
            // No reported rate: estimate it from the SoC rise.
            self.power_kw = Some(kw);
        }
        // A pending command that is now visible.
        if let (Some(p), Some(c)) = (&self.pending, seen.charging) {
            if p.action.charging() == c {
                events.push(Event::Confirmed(p.action));
                self.pending = None;
            }
        }
        // The driver: Enode's manual reasons, or a change we did not make.
        if self.suspended.is_none() && suspend_on_override && !first {
            let changed = match (self.charging, seen.charging) {
                (Some(a), Some(b)) => a != b,
                _ => false,
            };
            let ours = self
                .pending
                .as_ref()
                .is_some_and(|p| Some(p.action.charging()) == seen.charging)
                || events.iter().any(|e| matches!(e, Event::Confirmed(_)));
            let stopped_full = seen.charging == Some(false) && seen.full();
            let why = if seen.manual {
                Some("the driver started or stopped charging (Enode reports a manual override)")
            } else if changed && !ours && !stopped_full {
                Some("charging changed without a command from smartcharged")
            } else {
                None
            };
            if let Some(why) = why {
                self.suspended = Some(why.to_owned());
                self.pending = None;
                events.push(Event::Override(why.to_owned()));
                // The driver's hand beats an operator's override too.
                if let Some(o) = self.steer.take() {
                    events.push(Event::SteeringEnded(format!(
                        "override {} ended: the driver took over",
                        o.mode.as_str()
                    )));
                }
            }
        }
        self.charging = seen.charging;
        self.soc = seen.soc;
        self.observed_at = Some(now);
        self.expire(now, seen, &mut events);
        events
    }

    /// Ends an override or trip that reached its limit: its time, the
    /// override's state of charge, or (charge-now) the vehicle's own charge
    /// limit. What ends asks for a new plan.
    pub fn expire(&mut self, now: DateTime<Utc>, seen: &Seen, events: &mut Vec<Event>) {
        if let Some(o) = &self.steer {
            let why = if o.until.is_some_and(|u| now >= u) {
                Some("its time is up")
            } else if o.mode == OverrideMode::ChargeNow
                && matches!((o.soc, seen.soc), (Some(want), Some(soc)) if soc >= want)
            {
                Some("its state of charge is reached")
            } else if o.mode == OverrideMode::ChargeNow && seen.full() {
                Some("the vehicle's charge limit is reached")
            } else {
                None
            };
            if let Some(why) = why {
                events.push(Event::SteeringEnded(format!(
                    "override {} ended: {why}",
                    o.mode.as_str()
                )));
                self.steer = None;
                if self.session {
                    self.replan = Some("override ended".into());
                }
            }
        }
        if self.trip.as_ref().is_some_and(|t| now >= t.depart) {
            events.push(Event::SteeringEnded(
                "trip ended: its departure has passed".into(),
            ));
            self.trip = None;
            if self.session {
                self.replan = Some("trip ended".into());
            }
        }
    }

    /// Sets an operator's override. It lifts a suspension (the operator
    /// speaks for the driver) and an unresponsive mark (worth one more
    /// try), and is acted on at the next decision.
    pub fn set_override(&mut self, o: Option<Override>) {
        self.suspended = None;
        self.unresponsive = false;
        if o.is_none() || self.steer.is_some() {
            // Back to the plan, or from one override to another: plan anew
            // from what the vehicle is doing now.
            self.replan = Some("override changed".into());
        }
        if self.pending.as_ref().is_some_and(|p| {
            o.as_ref()
                .is_none_or(|o| p.action.charging() != (o.mode == OverrideMode::ChargeNow))
        }) {
            self.pending = None;
        }
        self.steer = o;
    }

    /// Sets (or clears) a one-off departure; plugged in, the plan is made
    /// again for it.
    pub fn set_trip(&mut self, mut t: Option<Trip>) {
        if let Some(t) = t.as_mut() {
            t.in_session = self.session;
        }
        self.trip = t;
        if self.session {
            self.replan = Some("trip changed".into());
        }
    }

    /// Grid power implied by the SoC rise since the last observation, when
    /// the vehicle charged throughout and at least 5 minutes passed.
    fn power_from_soc(&self, now: DateTime<Utc>, seen: &Seen) -> Option<f64> {
        let p = self.plan.as_ref()?;
        let (Some(true), Some(true)) = (self.charging, seen.charging) else {
            return None;
        };
        let hours = (now - self.observed_at?).num_seconds() as f64 / 3600.0;
        let rise = seen.soc? - self.soc?;
        (hours >= 5.0 / 60.0 && rise > 0.0)
            .then(|| rise / 100.0 * p.battery_kwh / p.efficiency / hours)
    }

    /// Whether the plan wants the vehicle charging at `now`.
    pub fn desired(&self, now: DateTime<Utc>) -> Option<bool> {
        self.plan.as_ref().map(|p| p.plan.is_charging_at(now))
    }

    /// The SoC the plan expects at `now`, percent.
    pub fn expected_soc(&self, now: DateTime<Utc>) -> Option<f64> {
        let p = self.plan.as_ref()?;
        let minutes: f64 = p
            .plan
            .blocks
            .iter()
            .map(|b| {
                let end = b.end.min(now);
                if end > b.start {
                    (end - b.start).num_seconds() as f64 / 60.0
                } else {
                    0.0
                }
            })
            .sum();
        let kwh = minutes / 60.0 * p.power_kw * p.efficiency;
        Some(p.soc_at_plan + kwh / p.battery_kwh * 100.0)
    }

    /// What to do now. `replan_drift` is the policy's SoC drift threshold,
    /// `prices_version` the version of the newest price curve.
    pub fn decide(
        &self,
        now: DateTime<Utc>,
        seen: &Seen,
        replan_drift: f64,
        prices_version: u64,
    ) -> Step {
        if !self.session || self.unreachable {
            return Step::Idle;
        }
        if let Some(o) = &self.steer {
            let Some(charging) = seen.charging else {
                return Step::Idle;
            };
            let want = o.mode == OverrideMode::ChargeNow;
            if want && seen.full() {
                return Step::Idle;
            }
            let reasons = if want {
                ("override: charge now", "override: charge now")
            } else {
                ("override: stop", "override: stop")
            };
            return self.reconcile(now, want, charging, reasons);
        }
        if self.suspended.is_some() || self.unresponsive {
            return Step::Idle;
        }
        if self.replan.is_some() {
            return Step::Plan("asked to replan");
        }
        let Some(p) = &self.plan else {
            return Step::Plan("plugged in");
        };
        if p.prices_version < prices_version {
            return Step::Plan("new prices");
        }
        if now >= p.deadline {
            // the departure: only on an observation made after it settled
            let settled = p.deadline + DEPARTURE_SETTLE;
            if now < settled || self.observed_at.is_none_or(|o| o < settled) {
                return Step::Idle;
            }
            return Step::Plan("deadline passed");
        }
        if now - p.made_at >= SWEEP {
            return Step::Plan(SWEEP_REASON);
        }
        if let (Some(true), Some(kw)) = (seen.charging, self.power_kw) {
            if (kw - p.power_kw).abs() > POWER_DRIFT * p.power_kw {
                return Step::Plan("charge power differs from the plan");
            }
        }
        // Against what the plan expected when the SoC was read: an
        // observation a few minutes old (an edge acted on without a poll)
        // is not drift.
        let read_at = self.observed_at.map_or(now, |t| t.min(now));
        if let (Some(exp), Some(soc)) = (self.expected_soc(read_at), seen.soc) {
            if (soc - exp).abs() > replan_drift {
                return Step::Plan("state of charge drifted from the plan");
            }
        }
        let Some(charging) = seen.charging else {
            return Step::Idle;
        };
        let want = p.plan.is_charging_at(now);
        if want && seen.full() {
            return Step::Idle; // never above the vehicle's own limit
        }
        self.reconcile(now, want, charging, (BLOCK_STARTS, BLOCK_ENDS))
    }

    /// The command that makes `charging` what is wanted, if any; a command
    /// already pending is waited for, then sent again, then given up.
    /// `reasons` name a START and a STOP for the journal.
    fn reconcile(
        &self,
        now: DateTime<Utc>,
        want: bool,
        charging: bool,
        reasons: (&'static str, &'static str),
    ) -> Step {
        let action = if want { Action::Start } else { Action::Stop };
        if want == charging {
            // The observation agrees, but a command the other way may be in
            // flight (a START just sent, then a new plan says stop): it is
            // countermanded now rather than after it took effect. At a
            // shared connection the START's power is counted until then.
            return match &self.pending {
                Some(pd) if pd.action != action && now - pd.sent_at < CONFIRM_TIMEOUT => {
                    Step::Command(action, if want { reasons.0 } else { reasons.1 })
                }
                _ => Step::Idle,
            };
        }
        match &self.pending {
            Some(pd) if pd.action == action => {
                if now - pd.sent_at < CONFIRM_TIMEOUT {
                    Step::Idle
                } else if pd.attempts >= MAX_ATTEMPTS {
                    Step::GiveUp(action)
                } else {
                    Step::Command(action, "not confirmed; sending again")
                }
            }
            _ => Step::Command(action, if want { reasons.0 } else { reasons.1 }),
        }
    }

    /// Whether the part of the state that must survive a crash differs
    /// from `other`'s. The SoC, the time of the observation and the charge
    /// power reading change at nearly every poll and are learnt again from
    /// the next one, so a change of only those is not written (writing
    /// them made every poll of a plugged-in vehicle a flushed write).
    pub fn durably_differs(&self, other: &ControlState) -> bool {
        self.durable_digest() != other.durable_digest()
    }

    /// A digest of the parts that must survive a crash (all but the SoC,
    /// power, observation time and session log): the fleet keeps this
    /// rather than a copy of the last stored state (a copy with its plan
    /// is close to a kilobyte per vehicle) to write only changes.
    pub fn durable_digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let ControlState {
            session,
            plan,
            suspended,
            pending,
            charging,
            soc: _,
            power_kw: _,
            unresponsive,
            enode_noted,
            unreachable,
            observed_at: _,
            takeover,
            steer,
            trip,
            replan,
            log: _,
            waits_on_plug_in,
        } = self;
        let parts = (
            session,
            plan,
            suspended,
            pending,
            charging,
            unresponsive,
            enode_noted,
            unreachable,
            takeover,
            steer,
            trip,
            replan,
            waits_on_plug_in,
        );
        // The JSON the store writes (a NaN as null, as there). It cannot
        // fail for these types; if it did, a digest of its own would make
        // the state written rather than skipped.
        let bytes = serde_json::to_vec(&parts)
            .unwrap_or_else(|_| rand::random::<u64>().to_le_bytes().to_vec());
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        h.finish()
    }

    /// Whether the vehicle is known to wait for a command when plugged in
    /// (see [`ControlState::waits_on_plug_in`]).
    pub fn waits(&self) -> bool {
        self.waits_on_plug_in == Some(true)
    }

    /// What to do about Enode's smart charging being enabled on a vehicle
    /// the policy says to take over: send the PUT that disables it, wait
    /// for it to show, send again after [`CONFIRM_TIMEOUT`], and give up
    /// after [`MAX_ATTEMPTS`] until the next plug-in.
    pub fn takeover_step(&self, now: DateTime<Utc>) -> TakeOver {
        match &self.takeover {
            None => TakeOver::Send,
            Some(p) if p.attempts > MAX_ATTEMPTS => TakeOver::GaveUp,
            Some(p) if now - p.sent_at < CONFIRM_TIMEOUT => TakeOver::Wait,
            Some(p) if p.attempts >= MAX_ATTEMPTS => TakeOver::GiveUp,
            Some(_) => TakeOver::Send,
        }
    }

    /// Records a take-over attempt (sent, or refused by the API).
    pub fn takeover_sent(&mut self, now: DateTime<Utc>) {
        let attempts = self.takeover.as_ref().map_or(0, |p| p.attempts) + 1;
        self.takeover = Some(Pending {
            action: Action::Stop,
            sent_at: now,
            attempts,
        });
    }

    /// Records that the take-over was given up (logged once by the caller).
    pub fn takeover_given_up(&mut self) {
        if let Some(p) = self.takeover.as_mut() {
            p.attempts = MAX_ATTEMPTS + 1;
        }
    }

    /// Records a sent command.
    pub fn sent(&mut self, action: Action, now: DateTime<Utc>) {
        let attempts = match &self.pending {
            Some(p) if p.action == action => p.attempts + 1,
            _ => 1,
        };
        self.pending = Some(Pending {
            action,
            sent_at: now,
            attempts,
        });
    }

    /// The next instant worth waking for: a block edge, or a confirmation poll.
    pub fn next_wake(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let confirm = self.pending.as_ref().map(|p| {
            let t = p.sent_at + CONFIRM_AFTER;
            if t > now {
                t
            } else {
                p.sent_at + CONFIRM_TIMEOUT
            }
        });
        let departure = self
            .plan
            .as_ref()
            .filter(|_| self.session)
            .map(|p| p.deadline + DEPARTURE_SETTLE);
        [self.next_edge(now), confirm, departure]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    /// The next instant after `now` at which the plan or a steering limit
    /// may ask for something (a block edge before the deadline, an
    /// override's end, a trip's departure): what the fleet polls shortly
    /// before, so the decision there rests on a recent observation without
    /// a poll at the edge itself. The deadline (and a block ending there)
    /// is not one: it is decided on a poll after it (see
    /// [`DEPARTURE_SETTLE`]).
    pub fn next_edge(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let edge = self.plan.as_ref().and_then(|p| {
            p.plan
                .blocks
                .iter()
                .flat_map(|b| [b.start, b.end])
                .filter(|t| *t > now && *t < p.deadline)
                .min()
        });
        let limits = [
            self.steer.as_ref().and_then(|o| o.until),
            self.trip.as_ref().map(|t| t.depart),
        ];
        [edge]
            .into_iter()
            .chain(limits)
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    /// Whether the session's departure (its plan's deadline) has passed by
    /// [`DEPARTURE_SETTLE`] at `now` and no observation was made since:
    /// the fleet polls then, and nothing is commanded until it has.
    pub fn departure_unobserved(&self, now: DateTime<Utc>) -> bool {
        self.session
            && self.plan.as_ref().is_some_and(|p| {
                let settled = p.deadline + DEPARTURE_SETTLE;
                settled <= now && self.observed_at.is_none_or(|o| o < settled)
            })
    }

    /// The instants at which a pending command wants a fresh observation:
    /// [`CONFIRM_AFTER`] after it was sent (to confirm it) and
    /// [`CONFIRM_TIMEOUT`] after (to decide whether to send it again).
    /// An observation made before one of them that has passed cannot
    /// answer it, so the fleet polls.
    pub fn confirmation_due(&self, now: DateTime<Utc>, observed_at: Option<DateTime<Utc>>) -> bool {
        self.pending.as_ref().is_some_and(|p| {
            [p.sent_at + CONFIRM_AFTER, p.sent_at + CONFIRM_TIMEOUT]
                .into_iter()
                .any(|t| t <= now && observed_at.is_none_or(|o| o < t))
        })
    }
}

#[cfg(test)]
mod tests;
