//! Vehicles that share one grid connection (`[[policy.sites]]`).
//!
//! A charging location belongs to one Enode user, so the user's task owns
//! every vehicle plugged in there. It plans them together with
//! [`planner::plan_site`] whenever one of them would be planned (plug-in,
//! new prices, drift, deadline, sweep) or the set of vehicles at the site
//! changes (one arrives or leaves, an operator's charge-now begins or
//! ends, a driver starts a car by hand); a vehicle charging outside the
//! plan has its power reserved for as long as it is expected to charge.
//!
//! The limit also holds while commands are in flight: a START is sent only
//! when the power of the other vehicles counted as charging leaves room
//! for it. A vehicle counts as charging when it was last seen charging,
//! unless a STOP was accepted after that observation; or when a START to
//! it is pending. So at a block edge the STOPs go first and the STARTs
//! follow once those were accepted, and a vehicle that does not follow
//! its STOP (seen charging again) holds its power until it is seen
//! stopped, the others' STARTs waiting.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tracing::{debug, info, warn};

use super::{goal, FleetEvent, UserTask, ASSUMED_POWER_KW};
use crate::daemon::control::{Action, ActivePlan, ControlState, OverrideMode, SWEEP_REASON};
use crate::daemon::policy::{self, Site, VehiclePolicy};
use crate::model::Vehicle;
use crate::prices::PriceCurve;

/// Why the vehicles of a site are planned again when their set changed.
pub const SITE_CHANGED: &str = "vehicles at the site changed";

/// How a vehicle at a site takes part in its joint plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Controlled by smartcharged and planned with the others.
    Planned,
    /// Charging outside the plan (an operator's charge-now, a driver's
    /// start, a vehicle that does not follow commands, one smartcharged
    /// does not control): its power is reserved.
    Reserved,
    /// Plugged in, neither planned nor charging.
    Idle,
}

/// One vehicle plugged in at a site, as the joint plan sees it.
#[derive(Debug, Clone)]
struct Member {
    /// The vehicle.
    vehicle: Vehicle,
    /// Its policy (with the site's zone).
    policy: VehiclePolicy,
    /// Its part in the plan.
    role: Role,
    /// Grid power while charging, kW.
    power_kw: f64,
    /// Counted as charging now (see the module documentation).
    charging: bool,
}

/// What a user's task keeps about its sites.
#[derive(Debug, Default)]
pub struct Sites {
    /// When the API last accepted a STOP for each vehicle: an observation
    /// older than that no longer counts the vehicle as charging.
    stops: HashMap<String, DateTime<Utc>>,
    /// Vehicles whose START waits for power, with their site.
    waiting: HashMap<String, String>,
    /// Sites whose vehicles were handled since they were last settled.
    touched: BTreeSet<String>,
    /// Sites planned since they were last settled.
    replanned: HashSet<String>,
    /// Per site, the vehicles and their roles the joint plan in force was
    /// made for: a change plans the site again.
    made_for: HashMap<String, Vec<(String, Role)>>,
}

impl Sites {
    /// Notes that a vehicle of site `location` was handled.
    pub fn touch(&mut self, location: &str) {
        if !self.touched.contains(location) {
            self.touched.insert(location.to_owned());
        }
    }

    /// Forgets that `vehicle` waits for power; returns whether it did.
    pub fn stop_waiting(&mut self, vehicle: &str) -> bool {
        self.waiting.remove(vehicle).is_some()
    }

    /// Notes that `vehicle`'s START waits for power at `location`; logged
    /// when it begins to wait (`was` false), not at every retry.
    pub fn wait(&mut self, vehicle: &str, was: bool, location: &str) {
        if !was {
            info!(vehicle.id = %vehicle, site = %location, "START waits until the site has power for it");
        }
        self.waiting.insert(vehicle.to_owned(), location.to_owned());
    }

    /// The site whose power `vehicle`'s START waits for, if it waits.
    pub fn waiting_at(&self, vehicle: &str) -> Option<&str> {
        self.waiting.get(vehicle).map(String::as_str)
    }

    /// Records a command the API accepted at `at`.
    pub fn accepted(&mut self, vehicle: &str, action: Action, at: DateTime<Utc>) {
        match action {
            Action::Stop => {
                self.stops.insert(vehicle.to_owned(), at);
            }
            Action::Start => {
                self.stops.remove(vehicle);
            }
        }
    }
}

/// Whole watts of a power, rounded up (as the site planner counts them).
fn watts(kw: f64) -> i64 {
    (kw * 1000.0 - 1e-6).ceil() as i64
}

/// Whole watts of a limit, rounded down.
fn limit_watts(kw: f64) -> i64 {
    (kw * 1000.0 + 1e-6).floor() as i64
}

impl UserTask {
    /// The policy of `v` (with the zone of its site, if it is at one that
    /// sets one) and the site it is at.
    pub(super) fn policy_of(&self, v: &Vehicle) -> (VehiclePolicy, Option<Site>) {
        let config = self.fleet.policy.borrow();
        let mut p = config.for_vehicle(self.user.as_str(), &v.id);
        let site = config.site(v.charging_location_id.as_deref()).cloned();
        if let Some(tz) = site.as_ref().and_then(|s| s.time_zone) {
            p.time_zone = tz;
        }
        (p, site)
    }

    /// Loads a vehicle's stored control state if the task has not yet
    /// handled the vehicle.
    fn load_state(&mut self, id: &str) {
        if !self.states.contains_key(id) {
            let s = self
                .fleet
                .store
                .control(id)
                .ok()
                .flatten()
                .unwrap_or_default();
            self.stored.insert(id.to_owned(), s.durable_digest());
            self.states.insert(id.to_owned(), Box::new(s));
        }
    }

    /// Every vehicle plugged in at `location`, by id. `current` is the
    /// vehicle being handled, whose state is out of `self.states` while it
    /// is.
    fn members(&self, location: &str, current: Option<(&str, &ControlState)>) -> Vec<Member> {
        let mut out: Vec<Member> = self
            .tracked
            .values()
            .map(|t| &t.vehicle)
            .filter(|v| {
                v.charging_location_id.as_deref() == Some(location)
                    && v.charge_state
                        .as_ref()
                        .is_some_and(|c| c.is_plugged_in == Some(true))
            })
            .filter_map(|v| {
                let state = match current {
                    Some((id, s)) if id == v.id => s,
                    _ => self.states.get(&v.id)?,
                };
                Some(self.member(v, state))
            })
            .collect();
        out.sort_by(|a, b| a.vehicle.id.cmp(&b.vehicle.id));
        out
    }

    fn member(&self, v: &Vehicle, state: &ControlState) -> Member {
        let (policy, _) = self.policy_of(v);
        let obs = policy::Observation::from_vehicle(
            v,
            state.power_kw.or(Some(ASSUMED_POWER_KW)),
            &policy,
        );
        let power_kw = match &obs {
            Ok(o) => o.power_kw,
            Err(_) => policy
                .max_power_kw
                .or(state.power_kw)
                .unwrap_or(ASSUMED_POWER_KW),
        };
        let seen = v
            .charge_state
            .as_ref()
            .and_then(|c| c.is_charging)
            .or(state.charging);
        let observed = self.tracked.get(&v.id).and_then(|t| t.newest());
        let stopped_since = self
            .sites
            .stops
            .get(&v.id)
            .is_some_and(|&t| observed.is_none_or(|o| o <= t));
        let starting = state
            .pending
            .as_ref()
            .is_some_and(|p| p.action == Action::Start);
        let charging = starting || (seen == Some(true) && !stopped_since);
        let controlled =
            state.session && state.suspended.is_none() && !state.unresponsive && !state.unreachable;
        let charge_now = state
            .steer
            .as_ref()
            .is_some_and(|o| o.mode == OverrideMode::ChargeNow);
        let role = if controlled && state.steer.is_none() && obs.is_ok() {
            Role::Planned
        } else if charging || (controlled && charge_now) {
            Role::Reserved
        } else {
            Role::Idle
        };
        Member {
            vehicle: v.clone(),
            policy,
            role,
            power_kw,
            charging,
        }
    }

    /// Whether `v` may start now at `site`: the power of the other
    /// vehicles counted as charging and its own fit under the limit.
    pub(super) fn start_fits(
        &self,
        site: &Site,
        v: &Vehicle,
        state: &ControlState,
        now: DateTime<Utc>,
    ) -> bool {
        let own = state
            .plan
            .as_ref()
            .filter(|p| state.steer.is_none() && p.plan.is_charging_at(now))
            .map(|p| p.power_kw)
            .unwrap_or_else(|| self.member(v, state).power_kw);
        let others: i64 = self
            .members(&site.charging_location, Some((v.id.as_str(), state)))
            .iter()
            .filter(|m| m.vehicle.id != v.id && m.charging)
            .map(|m| watts(m.power_kw))
            .sum();
        others + watts(own) <= limit_watts(site.max_power_kw)
    }

    /// Plans every vehicle at `site` together and gives each its part;
    /// `v` (with `state`) is the vehicle being handled. The joint plan is
    /// made on a blocking thread: with block rules it may take up to the
    /// planner's work budget (about a second), which must not stall the
    /// tokio worker that runs the other users' tasks.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn plan_site(
        &mut self,
        site: &Site,
        v: &Vehicle,
        state: &mut ControlState,
        curve: &PriceCurve,
        version: u64,
        now: DateTime<Utc>,
        reason: &'static str,
    ) -> Result<(), String> {
        let location = site.charging_location.as_str();
        let ids: Vec<String> = self
            .tracked
            .values()
            .filter(|t| t.vehicle.charging_location_id.as_deref() == Some(location))
            .map(|t| t.vehicle.id.clone())
            .filter(|id| *id != v.id)
            .collect();
        for id in &ids {
            self.load_state(id);
        }
        let members = self.members(location, Some((v.id.as_str(), &*state)));
        // A vehicle that cannot be planned does not plan the others: they
        // are planned when they would be, or when the site changes.
        match members.iter().find(|m| m.vehicle.id == v.id) {
            Some(m) if m.role == Role::Planned => {}
            Some(m) => {
                return Err(policy::Observation::from_vehicle(
                    v,
                    state.power_kw.or(Some(ASSUMED_POWER_KW)),
                    &m.policy,
                )
                .err()
                .map_or_else(|| "not under control at the site".into(), |e| e.to_string()))
            }
            None => return Err("not plugged in at the site".into()),
        }
        // The plan starts at this minute, so a vehicle charging now goes on.
        let start = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
        let mut planned: Vec<(usize, planner::PlanRequest)> = Vec::new();
        let mut reserved: Vec<(usize, f64)> = Vec::new();
        for (i, m) in members.iter().enumerate() {
            match m.role {
                Role::Planned if planned.len() < planner::MAX_SITE_VEHICLES => {
                    let s = if m.vehicle.id == v.id {
                        &*state
                    } else {
                        &self.states[&m.vehicle.id]
                    };
                    let (p, deadline) = goal(&m.vehicle, &m.policy, s, now);
                    let req = policy::Observation::from_vehicle(
                        &m.vehicle,
                        s.power_kw.or(Some(ASSUMED_POWER_KW)),
                        &p,
                    )
                    .and_then(|obs| policy::plan_request(start, &p, deadline, &obs, curve));
                    match req {
                        Ok(r) => planned.push((i, r)),
                        Err(e) if m.vehicle.id == v.id => return Err(e.to_string()),
                        Err(e) => {
                            debug!(vehicle.id = %m.vehicle.id, site = %location, error = %e, "not in the joint plan");
                            if m.charging {
                                reserved.push((i, m.power_kw));
                            }
                        }
                    }
                }
                Role::Planned => {
                    warn!(vehicle.id = %m.vehicle.id, site = %location, most = planner::MAX_SITE_VEHICLES, "too many vehicles at the site: this one is not planned");
                    if m.charging {
                        reserved.push((i, m.power_kw));
                    }
                }
                Role::Reserved => reserved.push((i, m.power_kw)),
                Role::Idle => {}
            }
        }
        if !planned.iter().any(|(i, _)| members[*i].vehicle.id == v.id) {
            return Err(format!(
                "more than {} vehicles at the site",
                planner::MAX_SITE_VEHICLES
            ));
        }
        let horizon = planned.iter().map(|(_, r)| r.deadline).max().unwrap_or(now);
        let prices: Vec<planner::PriceSlot> = curve
            .from(start - policy::PRICE_HISTORY)
            .iter()
            .take_while(|s| s.start < horizon)
            .map(|s| planner::PriceSlot {
                start: s.start,
                end: s.end,
                price_per_kwh: s.price,
            })
            .collect();
        let reserved: Vec<planner::LoadStep> = reserved
            .iter()
            .map(|&(i, kw)| planner::LoadStep {
                start,
                end: reserved_until(
                    &members[i],
                    self.state_of(&members[i], v, state),
                    now,
                    horizon,
                ),
                kw,
            })
            .collect();
        let req = planner::SiteRequest {
            now: start,
            site_limit_kw: site.max_power_kw,
            tie_break: members[planned[0].0].policy.tie_break,
            prices,
            vehicles: planned
                .iter()
                .enumerate()
                .map(|(k, (_, r))| planner::SiteVehicle {
                    // Enode ids need not fit the planner's id grammar.
                    id: format!("v{k}"),
                    deadline: r.deadline,
                    battery_kwh: r.battery_kwh,
                    soc_percent: r.soc_percent,
                    target_percent: r.target_percent,
                    max_power_kw: r.max_power_kw,
                    efficiency: r.efficiency,
                    min_soc_percent: r.min_soc_percent,
                    charge_limit_percent: r.charge_limit_percent,
                    max_blocks: r.max_blocks,
                    min_block_minutes: r.min_block_minutes,
                    min_pause_minutes: r.min_pause_minutes,
                })
                .collect(),
            reserved,
        };
        let reserved_kw = req.reserved.iter().fold(0.0, |a, r| a + r.kw);
        let plan = tokio::task::spawn_blocking(move || planner::plan_site(&req))
            .await
            .map_err(|e| format!("the site planner failed: {e}"))?
            .map_err(|e| e.to_string())?;
        let fresh: Vec<ActivePlan> = planned
            .iter()
            .zip(&plan.vehicles)
            .map(|((_, r), p)| {
                let mut warnings = p.warnings.clone();
                warnings.extend(plan.warnings.iter().cloned());
                ActivePlan {
                    plan: planner::Plan {
                        feasible: p.feasible,
                        charge_minutes: p.charge_minutes,
                        energy_kwh: p.energy_kwh,
                        cost: p.cost,
                        asap_cost: asap_cost(curve, start, p.charge_minutes, r.max_power_kw),
                        shortfall_kwh: p.shortfall_kwh,
                        blocks: p.blocks.clone(),
                        warnings,
                    },
                    made_at: now,
                    deadline: r.deadline,
                    soc_at_plan: r.soc_percent,
                    battery_kwh: r.battery_kwh,
                    power_kw: r.max_power_kw,
                    efficiency: r.efficiency,
                    prices_version: version,
                }
            })
            .collect();
        let signature: Vec<(String, Role)> = members
            .iter()
            .map(|m| (m.vehicle.id.clone(), m.role))
            .collect();
        let same_set = self.sites.made_for.get(location) == Some(&signature);
        // A periodic sweep keeps the plans in force when each still does
        // its job (every START/STOP moved is a command pair).
        let keep = reason == SWEEP_REASON
            && same_set
            && planned.iter().zip(&fresh).all(|((i, _), f)| {
                self.state_of(&members[*i], v, state)
                    .plan
                    .as_ref()
                    .is_some_and(|cur| cur.still_good(&f.plan, now))
            });
        self.sites.made_for.insert(location.to_owned(), signature);
        self.sites.replanned.insert(location.to_owned());
        if keep {
            debug!(site = %location, "periodic sweep: the joint plan in force stays");
        } else {
            info!(
                site = %location, reason, vehicles = planned.len(), reserved_kw,
                limit_kw = site.max_power_kw, cost = plan.cost, exact = plan.exact,
                lower_bound = ?plan.lower_bound, peak_kw = plan.peak_kw(), feasible = plan.feasible,
                "site plan made"
            );
        }
        for ((i, _), f) in planned.iter().zip(fresh) {
            let id = members[*i].vehicle.id.clone();
            let s = if id == v.id {
                &mut *state
            } else {
                self.states.get_mut(&id).expect("loaded above")
            };
            s.replan = None;
            if keep {
                if let Some(cur) = s.plan.as_mut() {
                    cur.made_at = now;
                }
                continue;
            }
            self.plan_errors.remove(&id);
            info!(
                vehicle.id = %id, site = %location, reason, blocks = f.plan.blocks.len(),
                schedule = %super::Schedule(&f.plan.blocks),
                made_at = %now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                energy_kwh = f.plan.energy_kwh, cost = f.plan.cost,
                asap_cost = f.plan.asap_cost, feasible = f.plan.feasible,
                deadline = %f.deadline, "plan made"
            );
            self.fleet.emit(FleetEvent::Planned {
                user: self.user.clone(),
                vehicle: id,
                reason,
                plan: f.clone(),
            });
            s.plan = Some(f);
        }
        Ok(())
    }

    /// The control state of a member: `state` for the vehicle being
    /// handled, else the task's.
    fn state_of<'a>(
        &'a self,
        m: &Member,
        v: &Vehicle,
        state: &'a ControlState,
    ) -> &'a ControlState {
        if m.vehicle.id == v.id {
            state
        } else {
            &self.states[&m.vehicle.id]
        }
    }

    /// Brings the sites handled since the last call up to date: a site
    /// whose vehicles or their roles changed is planned again, and after a
    /// new plan (or while a START waits) every vehicle there is decided
    /// again on its last observation, those counted as charging first, so
    /// the STOPs go out before the STARTs.
    pub(super) async fn settle_sites(&mut self) -> Result<(), super::RoundError> {
        let touched = std::mem::take(&mut self.sites.touched);
        for location in touched {
            if self
                .fleet
                .policy
                .borrow()
                .site(Some(location.as_str()))
                .is_none()
            {
                continue;
            }
            let members = self.members(&location, None);
            let signature: Vec<(String, Role)> = members
                .iter()
                .map(|m| (m.vehicle.id.clone(), m.role))
                .collect();
            let planned = members.iter().any(|m| m.role == Role::Planned);
            // No joint plan known (a restart, a new site) counts as a
            // change: plans made before may not have been made together.
            if planned && self.sites.made_for.get(&location) != Some(&signature) {
                debug!(site = %location, "the vehicles at the site changed; planning it again");
                for m in members.iter().filter(|m| m.role == Role::Planned) {
                    if let Some(s) = self.states.get_mut(&m.vehicle.id) {
                        s.replan.get_or_insert_with(|| SITE_CHANGED.into());
                    }
                }
            } else if !planned {
                self.sites.made_for.remove(&location);
            }
            let waiting = self.sites.waiting.values().any(|l| *l == location);
            let replan = planned
                && members.iter().any(|m| {
                    self.states
                        .get(&m.vehicle.id)
                        .is_some_and(|s| s.replan.is_some())
                });
            if !(replan || waiting || self.sites.replanned.contains(&location)) {
                continue;
            }
            // Twice at most: a replan in the first pass changes what the
            // vehicles handled before it should do.
            for _ in 0..2 {
                self.sites.replanned.remove(&location);
                let mut order = self.members(&location, None);
                order.sort_by_key(|m| (!m.charging, m.vehicle.id.clone()));
                for m in order {
                    let at = self
                        .tracked
                        .get(&m.vehicle.id)
                        .and_then(|t| t.newest())
                        .unwrap_or_else(|| self.fleet.clock.now());
                    self.vehicle(&m.vehicle, at).await?;
                }
                if !self.sites.replanned.contains(&location) {
                    break;
                }
            }
            self.sites.touched.remove(&location);
        }
        self.sites.replanned.clear();
        Ok(())
    }
}

/// Until when a vehicle charging outside the plan is expected to charge:
/// an operator's charge-now until its time, its state of charge or the
/// vehicle's limit; any other until the vehicle's limit at its power (a
/// minute more, for the rounding). Unknown: the end of the horizon.
fn reserved_until(
    m: &Member,
    state: &ControlState,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> DateTime<Utc> {
    let cs = m.vehicle.charge_state.as_ref();
    let limit = cs.and_then(|c| c.charge_limit).unwrap_or(100.0);
    let o = state
        .steer
        .as_ref()
        .filter(|o| o.mode == OverrideMode::ChargeNow);
    let want = o.and_then(|o| o.soc).map_or(limit, |s| s.min(limit));
    let until = match (
        cs.and_then(|c| c.battery_level),
        cs.and_then(|c| c.battery_capacity_kwh),
    ) {
        (Some(soc), Some(kwh)) if m.power_kw > 0.0 && kwh > 0.0 => {
            let hours = (want - soc).max(0.0) / 100.0 * kwh / m.policy.efficiency / m.power_kw;
            let secs =
                (hours * 3600.0).min(horizon.signed_duration_since(now).num_seconds() as f64);
            now + TimeDelta::seconds(secs.max(0.0) as i64 + 60)
        }
        _ => horizon,
    };
    let until = o.and_then(|o| o.until).map_or(until, |u| u.min(until));
    until.min(horizon).max(now + TimeDelta::minutes(1))
}

/// What charging `minutes` at `kw` from `start` on without pause would
/// cost at the curve's prices (minutes without a price count nothing):
/// the "dumb charger" figure a single plan reports as `asap_cost`.
fn asap_cost(curve: &PriceCurve, start: DateTime<Utc>, minutes: u32, kw: f64) -> f64 {
    let end = start + TimeDelta::minutes(i64::from(minutes));
    curve
        .from(start)
        .iter()
        .take_while(|s| s.start < end)
        .map(|s| {
            let a = s.start.max(start);
            let b = s.end.min(end);
            let h = (b - a).num_seconds().max(0) as f64 / 3600.0;
            s.price * kw * h
        })
        .sum()
}
