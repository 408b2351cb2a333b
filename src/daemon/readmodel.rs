//! The read model: one snapshot of the daemon for every view. The admin
//! socket's JSON, the CLI's tables, the status page and the metrics all
//! show a [`Snapshot`] (or one [`VehicleView`] of it); none of them derives
//! again what is computed here or next to the controller (the
//! [`Explanation`] above all).
//!
//! The fleet publishes a [`Live`] entry per vehicle after each decision
//! (`Fleet::publish`); [`ReadModel::snapshot`] joins those with the users
//! from the store, the price curve and the backoff states. Taking one costs
//! a copy of each vehicle's entry under one short lock; nothing here does
//! network I/O.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::control::{self, ControlState, Explanation, Override, Seen, Trip};
use super::fleet::Fleet;
use crate::prices::PriceCurve;
use crate::store::JournalEntry;
use crate::users::{UserId, UserStatus};

/// Commands kept per vehicle for the views (the journal keeps them all).
pub const RECENT_COMMANDS: usize = 5;

/// A vehicle's recent commands as the read model keeps them: at most
/// [`RECENT_COMMANDS`], in a list of exactly that capacity, each without
/// the vehicle (the list's key) and with the strings that repeat (the
/// action, the controller's reasons, "ok") not allocated. Kept as whole
/// journal entries in a list grown to 8 slots they cost about 2 KB per
/// vehicle, 20 MB for 10,000.
#[derive(Debug, Default)]
pub struct RecentCommands(VecDeque<RecentCommand>);

/// One entry of [`RecentCommands`].
#[derive(Debug, Clone)]
struct RecentCommand {
    at: DateTime<Utc>,
    user: Box<str>,
    action: Cow<'static, str>,
    reason: Cow<'static, str>,
    price: Option<f64>,
    result: Cow<'static, str>,
}

/// `s` as a shared constant when it is one of `known`, else as given.
fn shared(s: String, known: &[&'static str]) -> Cow<'static, str> {
    match known.iter().find(|k| **k == s) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(s),
    }
}

impl RecentCommands {
    /// Appends the newest command, dropping the oldest beyond the limit.
    pub fn push_newest(&mut self, e: JournalEntry) {
        if self.0.len() >= RECENT_COMMANDS {
            self.0.pop_front();
        }
        self.reserve();
        self.0.push_back(RecentCommand::from(e));
    }

    /// Adds an older command in front, unless the list is full (loading
    /// the journal newest first).
    pub fn push_oldest(&mut self, e: JournalEntry) {
        if self.0.len() < RECENT_COMMANDS {
            self.reserve();
            self.0.push_front(RecentCommand::from(e));
        }
    }

    /// Room for all of them at once, so the list never grows past it.
    fn reserve(&mut self) {
        if self.0.capacity() == 0 {
            self.0.reserve_exact(RECENT_COMMANDS);
        }
    }

    /// The commands of `vehicle` as journal entries, oldest first.
    pub fn entries(&self, vehicle: &str) -> Vec<JournalEntry> {
        self.0
            .iter()
            .map(|c| JournalEntry {
                at: c.at,
                user: c.user.to_string(),
                vehicle: vehicle.to_owned(),
                action: c.action.to_string(),
                reason: c.reason.to_string(),
                price: c.price,
                result: c.result.to_string(),
            })
            .collect()
    }
}

impl From<JournalEntry> for RecentCommand {
    fn from(e: JournalEntry) -> Self {
        RecentCommand {
            at: e.at,
            user: e.user.into_boxed_str(),
            action: shared(
                e.action,
                &["START", "STOP", "ENDED", "DISABLE_ENODE_SMART_CHARGING"],
            ),
            reason: shared(
                e.reason,
                &[
                    control::BLOCK_STARTS,
                    control::BLOCK_ENDS,
                    control::SWEEP_REASON,
                ],
            ),
            price: e.price,
            result: shared(e.result, &["ok"]),
        }
    }
}

/// What the fleet knows about one vehicle after its last decision.
#[derive(Debug, Clone)]
pub struct Live {
    /// The vehicle's user.
    pub user: UserId,
    /// The controller's state.
    pub state: ControlState,
    /// The last observation as the controller read it.
    pub seen: Option<Seen>,
    /// Enode's charging-location id at the last observation.
    pub location: Option<String>,
    /// Why it is (not) charging, computed with the decision.
    pub explanation: Explanation,
    /// The target in force (a trip's, else the policy's), percent.
    pub target_percent: f64,
    /// The zone the vehicle's deadlines are local to.
    pub time_zone: Tz,
}

/// The whole daemon at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// The daemon's version.
    pub version: &'static str,
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// Seconds since start.
    pub uptime_seconds: i64,
    /// The zone people read times in (the global policy's).
    pub time_zone: Tz,
    /// Linked users, by id.
    pub users: Vec<UserView>,
    /// Vehicles, by id.
    pub vehicles: Vec<VehicleView>,
    /// The price curve in use.
    pub prices: PricesView,
    /// Users and vendors that may not send requests yet.
    pub backoff: Vec<Backoff>,
    /// This month's savings report (local to `time_zone`), per vehicle
    /// and in total, from the stored plug-in sessions.
    pub month: crate::report::Report,
}

/// One user.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct UserView {
    /// The id.
    pub id: UserId,
    /// Active, or needs relinking.
    pub status: UserStatus,
    /// The vendor chosen at link time.
    pub vendor: Option<String>,
    /// When linked.
    pub linked_at: DateTime<Utc>,
    /// When the current access token expires.
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// One vehicle.
#[derive(Debug, Clone, Serialize)]
pub struct VehicleView {
    /// Enode's vehicle id.
    pub id: String,
    /// Its user (none: not observed since start, shown as stored).
    pub user: Option<UserId>,
    /// Coarse state: charging, waiting, idle, manual or trouble.
    pub state: &'static str,
    /// Why it is (not) charging now.
    pub explanation: Explanation,
    /// The last observation.
    pub observed: Option<Observed>,
    /// In a controlled plug-in session.
    pub session: bool,
    /// Why control is suspended until the unplug (the driver took over).
    pub suspended: Option<String>,
    /// Did not follow commands; left alone until the unplug.
    pub unresponsive: bool,
    /// Enode cannot reach it.
    pub unreachable: bool,
    /// A command awaiting confirmation.
    pub pending: Option<PendingView>,
    /// An operator's override in force.
    #[serde(rename = "override")]
    pub steer: Option<Override>,
    /// A one-off departure in force or waiting for the next plug-in.
    pub trip: Option<Trip>,
    /// The target in force, percent.
    pub target_percent: Option<f64>,
    /// The plan in force.
    pub plan: Option<PlanView>,
    /// The next block edge (start or end) after `taken_at`.
    pub next_edge: Option<DateTime<Utc>>,
    /// The last commands, newest last.
    pub last_commands: Vec<JournalEntry>,
}

/// An observation as the controller read it.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    /// When (none: stored state, not observed since start).
    pub at: Option<DateTime<Utc>>,
    /// Plugged in.
    pub plugged: Option<bool>,
    /// At a charging location smartcharged controls.
    pub at_controlled_location: bool,
    /// Enode's charging-location id.
    pub location: Option<String>,
    /// Charging.
    pub charging: Option<bool>,
    /// State of charge, percent.
    pub soc: Option<f64>,
    /// The vehicle's own charge limit, percent.
    pub charge_limit: Option<f64>,
    /// Reported charge rate, kW.
    pub charge_rate_kw: Option<f64>,
    /// Grid power the controller uses, kW.
    pub power_kw: Option<f64>,
}

/// A command awaiting confirmation.
#[derive(Debug, Clone, Serialize)]
pub struct PendingView {
    /// START or STOP.
    pub action: &'static str,
    /// Last sent.
    pub sent_at: DateTime<Utc>,
    /// Sends so far.
    pub attempts: u32,
}

/// A plan in force.
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    /// When it was made.
    pub made_at: DateTime<Utc>,
    /// Its deadline.
    pub deadline: DateTime<Utc>,
    /// Whether it reaches the target by the deadline.
    pub feasible: bool,
    /// Grid energy planned, kWh.
    pub energy_kwh: f64,
    /// Its cost, in the curve's currency.
    pub cost: f64,
    /// The cost of charging the same energy at once.
    pub asap_cost: f64,
    /// The charging blocks.
    pub blocks: Vec<planner::Block>,
    /// The planner's warnings.
    pub warnings: Vec<String>,
}

/// The price curve in use.
#[derive(Debug, Clone, Serialize)]
pub struct PricesView {
    /// ISO 4217 code.
    pub currency: Option<String>,
    /// First known instant.
    pub known_from: Option<DateTime<Utc>>,
    /// Last known instant (a new day-ahead day moves it).
    pub known_until: Option<DateTime<Utc>>,
    /// Price per kWh now.
    pub price_now: Option<f64>,
    /// Price per kWh of the newest known slot (the one ending at
    /// `known_until`).
    pub newest_price: Option<f64>,
    /// The last successful fetch since start (none: the daemon runs on the
    /// stored prices).
    pub last_fetch: Option<crate::metrics::PriceFetch>,
    /// The curve itself, for charts (not in the JSON: the `prices` command
    /// prints it).
    #[serde(skip)]
    pub curve: Option<Arc<PriceCurve>>,
}

/// A user or vendor held back by a rate limit or backoff.
#[derive(Debug, Clone, Serialize)]
pub struct Backoff {
    /// "user" or "vendor".
    pub scope: &'static str,
    /// The user id or vendor name.
    pub id: String,
    /// No request before this instant.
    pub until: DateTime<Utc>,
}

impl Snapshot {
    /// One vehicle by id.
    pub fn vehicle(&self, id: &str) -> Option<&VehicleView> {
        self.vehicles.iter().find(|v| v.id == id)
    }

    /// Users by status: (status, count), in a fixed order.
    pub fn users_by_status(&self) -> Vec<(UserStatus, usize)> {
        let mut out: Vec<(UserStatus, usize)> = Vec::new();
        for u in &self.users {
            match out.iter_mut().find(|(s, _)| *s == u.status) {
                Some((_, n)) => *n += 1,
                None => out.push((u.status, 1)),
            }
        }
        out
    }

    /// Vehicles by coarse state: (state, count), sorted by state.
    pub fn vehicles_by_state(&self) -> Vec<(&'static str, usize)> {
        let mut out: Vec<(&'static str, usize)> = Vec::new();
        for v in &self.vehicles {
            match out.iter_mut().find(|(s, _)| *s == v.state) {
                Some((_, n)) => *n += 1,
                None => out.push((v.state, 1)),
            }
        }
        out.sort_unstable();
        out
    }

    /// The next block edge of any vehicle.
    pub fn next_edge(&self) -> Option<(&str, DateTime<Utc>)> {
        self.vehicles
            .iter()
            .filter_map(|v| v.next_edge.map(|t| (v.id.as_str(), t)))
            .min_by_key(|(_, t)| *t)
    }
}

/// Takes snapshots of a running daemon. Cheap to share (`Arc`).
pub struct ReadModel {
    /// The fleet, whose view and store it reads.
    fleet: Arc<Fleet>,
    /// When the daemon started.
    started_at: DateTime<Utc>,
    /// The daemon's counters, which note the last price fetch.
    metrics: Arc<crate::metrics::Metrics>,
}

impl ReadModel {
    /// A read model over `fleet`, for a daemon started at `started_at`
    /// whose events are counted in `metrics`.
    pub fn new(
        fleet: Arc<Fleet>,
        started_at: DateTime<Utc>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        ReadModel {
            fleet,
            started_at,
            metrics,
        }
    }

    /// The fleet (for the actions of the admin socket).
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    /// The daemon now. Vehicles not observed since start are shown as
    /// last stored. A store that cannot be read leaves users (or those
    /// vehicles) out, with a warning in the log, rather than failing the
    /// whole view.
    pub fn snapshot(&self) -> Snapshot {
        let fleet = &self.fleet;
        let now = fleet.clock.now();
        let time_zone = fleet.policy.borrow().global().time_zone;
        let users = match user_views(&fleet.store) {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "status: cannot read the users");
                Vec::new()
            }
        };
        let stored = fleet.store.controls().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "status: cannot read the stored control states");
            Vec::new()
        });
        let mut vehicles: Vec<VehicleView> = {
            let view = fleet.view.lock().expect("view lock");
            let recent = fleet.recent.lock().expect("recent lock");
            let mut out: Vec<VehicleView> = view
                .iter()
                .map(|(id, live)| vehicle_view(id, Some(live), &live.state, now, recent.get(id)))
                .collect();
            out.extend(
                stored
                    .iter()
                    .filter(|(id, _)| !view.contains_key(id))
                    .map(|(id, s)| vehicle_view(id, None, s, now, recent.get(id))),
            );
            out
        };
        vehicles.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let curve = fleet.prices.borrow().clone();
        let prices = PricesView {
            currency: curve.as_ref().map(|c| c.currency.clone()),
            known_from: curve.as_ref().and_then(|c| c.start()),
            known_until: curve.as_ref().and_then(|c| c.end()),
            price_now: curve.as_ref().and_then(|c| c.price_at(now)),
            newest_price: curve
                .as_ref()
                .and_then(|c| c.slots().last())
                .map(|s| s.price),
            last_fetch: self.metrics.last_price_fetch(),
            curve,
        };
        Snapshot {
            taken_at: now,
            version: env!("CARGO_PKG_VERSION"),
            started_at: self.started_at,
            uptime_seconds: (now - self.started_at).num_seconds().max(0),
            time_zone,
            users,
            vehicles,
            prices,
            backoff: fleet.backoffs(now),
            month: fleet.month.get(now, time_zone),
        }
    }
}

/// The linked users as every view shows them, from the store: what
/// `GET /v1/users` answers and what `smartcharged users` prints without a
/// daemon.
pub fn user_views(store: &crate::store::Store) -> Result<Vec<UserView>, crate::store::StoreError> {
    Ok(store
        .users()?
        .into_iter()
        .map(|u| UserView {
            // An unreadable token record shows as no expiry rather than
            // hiding every user.
            token_expires_at: store.tokens(&u.id).ok().flatten().map(|t| t.expires_at),
            id: u.id,
            status: u.status,
            vendor: u.vendor,
            linked_at: u.linked_at,
        })
        .collect())
}

/// One vehicle's view from its live entry (or, not observed since start,
/// its stored state).
fn vehicle_view(
    id: &str,
    live: Option<&Live>,
    s: &ControlState,
    now: DateTime<Utc>,
    recent: Option<&RecentCommands>,
) -> VehicleView {
    let explanation = match live {
        Some(l) => l.explanation.clone(),
        None => control::explain(
            s,
            now,
            &control::Context {
                seen: None,
                plugged: None,
                enode_smart_charging: false,
                has_prices: false,
                plan_error: None,
                target_percent: 0.0,
                tz: Tz::UTC,
                waiting_for_site: None,
            },
        ),
    };
    let observed = live.and_then(|l| {
        l.seen.map(|seen| Observed {
            at: s.observed_at,
            plugged: seen.plugged,
            at_controlled_location: seen.at_home,
            location: l.location.clone(),
            charging: seen.charging,
            soc: seen.soc,
            charge_limit: seen.charge_limit,
            charge_rate_kw: seen.charge_rate_kw,
            power_kw: s.power_kw,
        })
    });
    let next_edge = s.plan.as_ref().and_then(|p| {
        p.plan
            .blocks
            .iter()
            .flat_map(|b| [b.start, b.end])
            .filter(|t| *t > now)
            .min()
    });
    VehicleView {
        id: id.to_owned(),
        user: live.map(|l| l.user.clone()),
        state: explanation.code.state(),
        explanation,
        observed,
        session: s.session,
        suspended: s.suspended.clone(),
        unresponsive: s.unresponsive,
        unreachable: s.unreachable,
        pending: s.pending.as_ref().map(|p| PendingView {
            action: p.action.as_str(),
            sent_at: p.sent_at,
            attempts: p.attempts,
        }),
        steer: s.steer.clone(),
        trip: s.trip.clone(),
        target_percent: live.map(|l| l.target_percent),
        plan: s.plan.as_ref().map(|p| PlanView {
            made_at: p.made_at,
            deadline: p.deadline,
            feasible: p.plan.feasible,
            energy_kwh: p.plan.energy_kwh,
            cost: p.plan.cost,
            asap_cost: p.plan.asap_cost,
            blocks: p.plan.blocks.clone(),
            warnings: p.plan.warnings.clone(),
        }),
        next_edge,
        last_commands: recent.map(|r| r.entries(id)).unwrap_or_default(),
    }
}

/// One setting of a vehicle's policy and the level it comes from.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySetting {
    /// The config key.
    pub key: &'static str,
    /// Its value in force, as the config writes it.
    pub value: String,
    /// "vehicle", "user", "global", "default", or "trip" (a one-off
    /// departure sets the deadline and maybe the target).
    pub source: &'static str,
}

/// One vehicle with the policy in force: `GET /v1/vehicles/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct VehicleDetail {
    /// The vehicle as every view shows it.
    #[serde(flatten)]
    pub vehicle: VehicleView,
    /// The policy in force and where each value came from.
    pub policy: Vec<PolicySetting>,
    /// The zone its times are local to.
    pub time_zone: Tz,
}

impl ReadModel {
    /// One vehicle with its policy, or none if it is not known.
    pub fn vehicle(&self, id: &str) -> Option<VehicleDetail> {
        let snap = self.snapshot();
        let vehicle = snap.vehicle(id)?.clone();
        let user = vehicle.user.as_ref().map_or("", |u| u.as_str());
        let config = self.fleet.policy.borrow().clone();
        let p = config.for_vehicle(user, id);
        let mut policy: Vec<PolicySetting> = config
            .sources(user, id)
            .into_iter()
            .map(|(key, source)| PolicySetting {
                key,
                value: policy_value(&p, key),
                source,
            })
            .collect();
        if let Some(t) = vehicle.trip.as_ref().filter(|t| t.in_session) {
            for s in policy.iter_mut() {
                if s.key == "deadlines" {
                    s.value = format!("{} (this session)", t.depart.with_timezone(&p.time_zone));
                    s.source = "trip";
                }
                if let (Some(target), "target_percent") = (t.target_percent, s.key) {
                    s.value = format!("{target}");
                    s.source = "trip";
                }
            }
        }
        Some(VehicleDetail {
            vehicle,
            policy,
            time_zone: p.time_zone,
        })
    }
}

/// A policy value as the config writes it.
fn policy_value(p: &super::policy::VehiclePolicy, key: &str) -> String {
    fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map_or_else(|| "none".into(), |v| v.to_string())
    }
    match key {
        "target_percent" => p.target_percent.to_string(),
        "deadlines" => {
            let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
            if p.deadlines.iter().all(|d| *d == p.deadlines[0]) {
                p.deadlines[0].format("%H:%M").to_string()
            } else {
                days.iter()
                    .zip(p.deadlines)
                    .map(|(d, t)| format!("{d} {}", t.format("%H:%M")))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }
        "time_zone" => p.time_zone.to_string(),
        "min_soc_percent" => p.min_soc_percent.to_string(),
        "max_blocks" => opt(p.max_blocks),
        "min_block_minutes" => opt(p.min_block_minutes),
        "min_pause_minutes" => opt(p.min_pause_minutes),
        "finish_by_departure_minutes" => opt(p.finish_by_departure_minutes),
        "opportunistic_price" => opt(p.opportunistic_price),
        "efficiency" => p.efficiency.to_string(),
        "max_power_kw" => opt(p.max_power_kw),
        "take_over_enode_smart_charging" => p.take_over_enode_smart_charging.to_string(),
        "use_enode_deadline" => p.use_enode_deadline.to_string(),
        "charging_locations" => {
            if p.charging_locations.is_empty() {
                "any".into()
            } else {
                p.charging_locations.join(", ")
            }
        }
        "suspend_on_manual_override" => p.suspend_on_manual_override.to_string(),
        "replan_soc_drift_percent" => p.replan_soc_drift_percent.to_string(),
        "poll_fast" => format!("{}s", p.poll_fast.as_secs()),
        "poll_slow" => format!("{}s", p.poll_slow.as_secs()),
        "tie_break" => format!("{:?}", p.tie_break).to_lowercase(),
        _ => String::new(),
    }
}

/// Vehicles per page of the JSON views (`GET /status`, `/v1/status`,
/// `/v1/vehicles`): a fleet of thousands is not serialised in one answer.
pub const JSON_PAGE: usize = 100;

/// Where a page of vehicles sits among all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PageInfo {
    /// This page, from 1.
    pub page: usize,
    /// How many pages there are (at least 1).
    pub pages: usize,
    /// Vehicles per page ([`JSON_PAGE`]).
    pub per_page: usize,
    /// Vehicles in all.
    pub total: usize,
    /// The next page, if there is one.
    pub next: Option<usize>,
}

/// Page `page` (from 1; 0 is 1) of `items`, [`JSON_PAGE`] to a page; a page
/// past the last is empty (and has no next).
pub fn page_of<T>(items: Vec<T>, page: usize) -> (Vec<T>, PageInfo) {
    let page = page.max(1);
    let total = items.len();
    let pages = total.div_ceil(JSON_PAGE).max(1);
    let start = (page - 1).saturating_mul(JSON_PAGE).min(total);
    let out: Vec<T> = items.into_iter().skip(start).take(JSON_PAGE).collect();
    let info = PageInfo {
        page,
        pages,
        per_page: JSON_PAGE,
        total,
        next: page.checked_add(1).filter(|_| page < pages),
    };
    (out, info)
}

/// The JSON answer of `GET /status` and `GET /v1/status`: the snapshot
/// with one page of its vehicles, where that page is, and the counts by
/// state of all of them.
#[derive(Debug, Serialize)]
pub struct StatusPage {
    /// The snapshot, `vehicles` cut to the page.
    #[serde(flatten)]
    pub snapshot: Snapshot,
    /// Which page of the vehicles this is.
    pub vehicles_page: PageInfo,
    /// Every vehicle by coarse state, not only this page's.
    pub vehicles_by_state: Vec<(&'static str, usize)>,
}

impl StatusPage {
    /// Page `page` of `snapshot`.
    pub fn new(mut snapshot: Snapshot, page: usize) -> StatusPage {
        let vehicles_by_state = snapshot.vehicles_by_state();
        let (vehicles, vehicles_page) = page_of(std::mem::take(&mut snapshot.vehicles), page);
        snapshot.vehicles = vehicles;
        StatusPage {
            snapshot,
            vehicles_page,
            vehicles_by_state,
        }
    }
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn pages_of_vehicles() {
        let (p, i) = page_of((0..250).collect::<Vec<_>>(), 1);
        assert_eq!((p.len(), p[0]), (100, 0));
        assert_eq!((i.pages, i.total, i.next), (3, 250, Some(2)));
        let (p, i) = page_of((0..250).collect::<Vec<_>>(), 3);
        assert_eq!((p.len(), p[0], i.next), (50, 200, None));
        let (p, i) = page_of((0..250).collect::<Vec<_>>(), 4);
        assert!(p.is_empty() && i.next.is_none());
        let (p, i) = page_of(Vec::<u8>::new(), 0);
        assert!(p.is_empty());
        assert_eq!((i.page, i.pages, i.next), (1, 1, None));
        let (_, i) = page_of((0..100).collect::<Vec<_>>(), usize::MAX);
        assert!(i.next.is_none());
    }

    /// The recent list keeps the newest RECENT_COMMANDS, oldest first, in
    /// a list that never grows past them, and gives back the entries as
    /// they were journaled (shared strings and all).
    #[test]
    fn recent_commands_keep_the_newest_and_give_back_the_entries() {
        let entry = |i: i64, reason: &str, result: &str| JournalEntry {
            at: chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::minutes(i),
            user: "user-1".into(),
            vehicle: "car-1".into(),
            action: "START".into(),
            reason: reason.into(),
            price: Some(i as f64),
            result: result.into(),
        };
        let mut r = RecentCommands::default();
        for i in 0..RECENT_COMMANDS as i64 + 3 {
            r.push_newest(entry(i, control::BLOCK_STARTS, "ok"));
        }
        assert_eq!(r.0.capacity(), RECENT_COMMANDS);
        let got = r.entries("car-1");
        let want: Vec<_> = (3..RECENT_COMMANDS as i64 + 3)
            .map(|i| entry(i, control::BLOCK_STARTS, "ok"))
            .collect();
        assert_eq!(got, want);
        // Loading the journal newest first fills from the front, and a
        // reason or result of its own is kept as it was.
        let mut r = RecentCommands::default();
        r.push_oldest(entry(9, "override (by root)", "rejected: 400"));
        r.push_oldest(entry(8, control::BLOCK_ENDS, "ok"));
        assert_eq!(
            r.entries("car-1"),
            vec![
                entry(8, control::BLOCK_ENDS, "ok"),
                entry(9, "override (by root)", "rejected: 400")
            ]
        );
    }
}
