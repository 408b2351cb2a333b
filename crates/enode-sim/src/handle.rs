//! `SimHandle`: what a test holds to steer the simulator while a client
//! talks to it over HTTP — faults, driver actions, shortcuts and counters.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clock::Clock;
use serde::{Deserialize, Serialize};

use crate::faults::{AuthorizeError, Fault, FaultId, FaultKind, Target, Trigger};
use crate::scenario::{valid_deadline, RefreshPolicy, Scenario, ScenarioError};
use crate::state::{State, TokenSet};
use crate::stats::{CommandRecord, RotationRecord, Stats};
use crate::tokens::Scopes;
use crate::vehicle::{Action, ChargeSegment};

/// Why a handle call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No such user in the simulator.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// No such vehicle in the simulator.
    #[error("unknown vehicle {0:?}")]
    UnknownVehicle(String),
    /// The location is not one of the vehicle's user's.
    #[error("unknown location {0:?}")]
    UnknownLocation(String),
    /// A scope the spec does not know.
    #[error("unknown scope {0:?}")]
    UnknownScope(String),
    /// A smart-charging deadline that is not "HH:MM".
    #[error("deadline {0:?} is not HH:MM")]
    BadDeadline(String),
    /// The scenario has no OAuth client to issue tokens for.
    #[error("the scenario has no client")]
    NoClient,
}

/// The shared part behind every handle clone.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The clock every instant comes from.
    pub clock: Clock,
    /// The world.
    pub state: Mutex<State>,
    /// The firehose webhook's deliverer state.
    pub webhooks: Mutex<crate::webhooks::Webhooks>,
    /// Wakes the deliverer after a change.
    pub wake: tokio::sync::Notify,
    /// API requests per clock second (unix seconds), bounded.
    pub per_second: Mutex<std::collections::HashMap<i64, u32>>,
}

/// A cheap-to-clone handle on a running (or about to run) simulator.
#[derive(Debug, Clone)]
pub struct SimHandle {
    /// State and clock.
    pub(crate) shared: Arc<Shared>,
}

/// What a vehicle looks like to the simulator, exactly (not as the API
/// rounds it), for test assertions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleSnapshot {
    /// Vehicle id.
    pub id: String,
    /// Owner's user id.
    pub user: String,
    /// Battery level now, percent.
    pub soc: f64,
    /// Charge limit, percent.
    pub charge_limit: f64,
    /// Battery capacity, kWh.
    pub capacity_kwh: f64,
    /// Charge power, kW.
    pub charge_kw: f64,
    /// Plugged in now.
    pub plugged_in: bool,
    /// Charging now.
    pub charging: bool,
    /// Charging location id, `None` when away.
    pub location: Option<String>,
    /// The current `isChargingReasons` value.
    pub reason: String,
    /// Enode smart charging enabled.
    pub smart_charging_enabled: bool,
    /// Energy delivered since the start, kWh.
    pub energy_kwh: f64,
    /// When that energy was delivered.
    pub segments: Vec<ChargeSegment>,
}

/// What the authorization server knows of a refresh token it issued
/// ([`SimHandle::refresh_token_info`]): a kill test asks it of the token a
/// client stored, to see whether the client missed a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenInfo {
    /// The user of the grant.
    pub user: String,
    /// The token's sequence number in its grant.
    pub seq: u32,
    /// The sequence number of the grant's current refresh token: equal to
    /// `seq` when the token is the current one.
    pub current_seq: u32,
    /// When the token was first used (rotated away), if it was and the
    /// grant still remembers it (the latest 8 rotations).
    pub used_at: Option<DateTime<Utc>>,
    /// Whether the grant is revoked.
    pub revoked: bool,
}

/// A user's token set, as `POST /_sim/grant-tokens` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTokens {
    /// The user id.
    pub user: String,
    /// The tokens issued.
    #[serde(flatten)]
    pub tokens: TokenSet,
}

impl SimHandle {
    /// A simulator world for `scenario`, reading time from `clock`.
    pub fn new(scenario: Scenario, clock: Clock) -> Result<SimHandle, ScenarioError> {
        let seed = scenario.seed;
        let state = State::new(scenario, clock.now())?;
        Ok(SimHandle {
            shared: Arc::new(Shared {
                clock,
                webhooks: Mutex::new(crate::webhooks::Webhooks::new(seed)),
                wake: tokio::sync::Notify::new(),
                per_second: Mutex::new(Default::default()),
                state: Mutex::new(state),
            }),
        })
    }

    /// Locks the world. A panic in a handler cannot leave it half-updated
    /// in a way that matters to a test, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clock the simulator reads.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Clock time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// The instant scenario offsets count from.
    pub fn origin(&self) -> DateTime<Utc> {
        self.lock().origin
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.lock().stats.snapshot()
    }

    /// Every accepted charging command so far, oldest first.
    pub fn command_log(&self) -> Vec<CommandRecord> {
        self.lock().stats.command_log.clone()
    }

    /// The latest refresh-token rotations (up to about a million), oldest
    /// first: when each grant rotated, for kill tests to compare with the
    /// instants they killed the client.
    pub fn rotations(&self) -> Vec<RotationRecord> {
        self.lock().stats.rotation_log.iter().cloned().collect()
    }

    /// What the server knows of a refresh token value; `None` for one it
    /// never issued.
    pub fn refresh_token_info(&self, token: &str) -> Option<RefreshTokenInfo> {
        let st = self.lock();
        let c = st
            .decode(token)
            .filter(|c| c.kind == crate::tokens::Kind::Refresh)?;
        let g = st.grants.get(c.id as usize)?;
        Some(RefreshTokenInfo {
            user: g.user.clone(),
            seq: c.seq,
            current_seq: g.refresh_seq,
            used_at: g
                .used
                .iter()
                .find(|(seq, _)| *seq == c.seq)
                .map(|(_, at)| *at),
            revoked: g.revoked,
        })
    }

    /// Zeroes the counters (e.g. after a warm-up phase).
    pub fn reset_stats(&self) {
        self.lock().stats = Default::default();
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, fault: Fault) -> FaultId {
        self.lock().faults.add(fault)
    }

    /// Removes a fault rule; false if it was gone (spent) already.
    pub fn remove_fault(&self, id: FaultId) -> bool {
        self.lock().faults.remove(id)
    }

    /// Removes every fault rule and the authorize error.
    pub fn clear_faults(&self) {
        let mut st = self.lock();
        st.faults.clear();
        st.authorize_error = None;
    }

    /// The next `n` API requests (of `user`, or anyone) get 429 with
    /// `Retry-After: retry_after` (whole seconds).
    pub fn rate_limit_next(&self, user: Option<&str>, n: u32, retry_after: Duration) -> FaultId {
        self.add_fault(Fault {
            kind: FaultKind::RateLimit {
                retry_after_secs: Some(retry_after.as_secs()),
            },
            user: user.map(String::from),
            target: Target::Api,
            trigger: Trigger::Next { n },
        })
    }

    /// Each API request (of `user`, or anyone) gets 429 with probability
    /// `p`, drawn from the seeded RNG.
    pub fn rate_limit_rate(&self, user: Option<&str>, p: f64, retry_after: Duration) -> FaultId {
        self.add_fault(Fault {
            kind: FaultKind::RateLimit {
                retry_after_secs: Some(retry_after.as_secs()),
            },
            user: user.map(String::from),
            target: Target::Api,
            trigger: Trigger::Rate { p },
        })
    }

    /// The next `n` requests to `target` (of `user`, or anyone) get `status`
    /// (500, 502, 503 or 504).
    pub fn server_error_next(
        &self,
        target: Target,
        user: Option<&str>,
        n: u32,
        status: u16,
    ) -> FaultId {
        self.add_fault(Fault {
            kind: FaultKind::ServerError {
                status,
                retry_after_secs: None,
            },
            user: user.map(String::from),
            target,
            trigger: Trigger::Next { n },
        })
    }

    /// Every request to `target` is answered `delay` (clock time) later.
    pub fn add_latency(&self, target: Target, delay: Duration) -> FaultId {
        self.add_fault(Fault {
            kind: FaultKind::Latency {
                millis: delay.as_millis() as u64,
            },
            user: None,
            target,
            trigger: Trigger::Always,
        })
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_access_token_lifetime(&self, d: Duration) {
        self.lock().access_lifetime =
            chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
    }

    /// Refresh-token behaviour from now on. A grace period above
    /// [`GRACE_MAX_SECS`](crate::scenario::GRACE_MAX_SECS) is capped to it.
    pub fn set_refresh_policy(&self, mut p: RefreshPolicy) {
        p.grace_secs = p
            .grace_secs
            .map(|g| g.clamp(1, crate::scenario::GRACE_MAX_SECS));
        self.lock().refresh = p;
    }

    /// Makes the authorize endpoint redirect with this error (until set to
    /// `None`), as if the user had refused consent.
    pub fn set_authorize_error(&self, e: Option<AuthorizeError>) {
        self.lock().authorize_error = e;
    }

    /// Makes `GET /health/vendors` report `vendor` with `status` (`READY`,
    /// `ELEVATED_ERROR_RATE`, `OUTAGE`, or anything else a client must
    /// tolerate), until set again. The simulator itself keeps answering
    /// for that vendor's vehicles: the lever tests what a client does with
    /// the report.
    pub fn set_vendor_status(&self, vendor: &str, status: &str) {
        let mut st = self.lock();
        if status == "READY" {
            st.vendor_status.remove(vendor);
        } else {
            st.vendor_status
                .insert(vendor.to_owned(), status.to_owned());
        }
    }

    /// Issues a token set for `user` with `scopes` ("offline_access all")
    /// to the scenario's first client, as if the user had linked: for load
    /// tests that seed many users without a browser flow.
    pub fn grant_tokens(&self, user: &str, scopes: &str) -> Result<TokenSet, SimError> {
        let scopes = Scopes::parse(scopes).map_err(SimError::UnknownScope)?;
        let now = self.now();
        let mut st = self.lock();
        if st.clients.is_empty() {
            return Err(SimError::NoClient);
        }
        if !st.users.contains_key(user) {
            return Err(SimError::UnknownUser(user.into()));
        }
        let g = st.new_grant(user, 0, scopes);
        st.stats.tokens.granted_by_handle += 1;
        Ok(st.grant_tokens(g, now))
    }

    /// [`SimHandle::grant_tokens`] for each of `users` (every user when
    /// `None`), under one lock: how a benchmark in another process seeds a
    /// store of 100,000 linked users (`POST /_sim/grant-tokens`).
    pub fn grant_tokens_many(
        &self,
        users: Option<&[String]>,
        scopes: &str,
    ) -> Result<Vec<UserTokens>, SimError> {
        let scopes = Scopes::parse(scopes).map_err(SimError::UnknownScope)?;
        let now = self.now();
        let mut st = self.lock();
        if st.clients.is_empty() {
            return Err(SimError::NoClient);
        }
        let ids: Vec<String> = match users {
            Some(u) => u.to_vec(),
            None => {
                let mut all: Vec<String> = st.users.keys().cloned().collect();
                all.sort();
                all
            }
        };
        let mut out = Vec::with_capacity(ids.len());
        for user in ids {
            if !st.users.contains_key(user.as_str()) {
                return Err(SimError::UnknownUser(user));
            }
            let g = st.new_grant(&user, 0, scopes);
            st.stats.tokens.granted_by_handle += 1;
            let tokens = st.grant_tokens(g, now);
            out.push(UserTokens { user, tokens });
        }
        Ok(out)
    }

    /// Exact snapshots of every vehicle, sorted by id.
    pub fn vehicles(&self) -> Vec<VehicleSnapshot> {
        self.vehicle_ids()
            .iter()
            .filter_map(|id| self.vehicle(id))
            .collect()
    }

    /// Revokes every grant of `user` (as `DELETE /users/{id}/authorization`).
    pub fn revoke_user(&self, user: &str) -> Result<(), SimError> {
        let mut st = self.lock();
        if !st.users.contains_key(user) {
            return Err(SimError::UnknownUser(user.into()));
        }
        st.revoke_user(user);
        Ok(())
    }

    fn act(&self, vehicle: &str, action: Action) -> Result<(), SimError> {
        let now = self.now();
        let mut st = self.lock();
        let v = st
            .vehicles
            .get_mut(vehicle)
            .ok_or_else(|| SimError::UnknownVehicle(vehicle.into()))?;
        v.advance(now);
        v.apply(now, action);
        drop(st);
        self.wake_deliverer();
        Ok(())
    }

    /// The cable goes in now (charging starts if the vehicle does that).
    pub fn plug_in(&self, vehicle: &str) -> Result<(), SimError> {
        self.act(vehicle, Action::PlugIn)
    }

    /// The cable comes out now.
    pub fn unplug(&self, vehicle: &str) -> Result<(), SimError> {
        self.act(vehicle, Action::Unplug)
    }

    /// The vehicle is now at `location` (a location id of its user) or away
    /// (`None`); moving unplugs it.
    pub fn move_to(&self, vehicle: &str, location: Option<&str>) -> Result<(), SimError> {
        if let Some(l) = location {
            let st = self.lock();
            let v = st
                .vehicles
                .get(vehicle)
                .ok_or_else(|| SimError::UnknownVehicle(vehicle.into()))?;
            let known = st.users[v.user.as_str()]
                .locations
                .iter()
                .any(|x| x.id == l);
            if !known {
                return Err(SimError::UnknownLocation(l.into()));
            }
        }
        self.act(vehicle, Action::MoveTo(location.map(String::from)))
    }

    /// Sets the battery level now, percent.
    pub fn set_soc(&self, vehicle: &str, soc: f64) -> Result<(), SimError> {
        self.act(vehicle, Action::SetSoc(soc))
    }

    /// The driver starts charging by hand (reason `MANUALLY_STARTED`).
    pub fn driver_start(&self, vehicle: &str) -> Result<(), SimError> {
        self.act(vehicle, Action::DriverStart)
    }

    /// The driver stops charging by hand (reason `MANUALLY_STOPPED`).
    pub fn driver_stop(&self, vehicle: &str) -> Result<(), SimError> {
        self.act(vehicle, Action::DriverStop)
    }

    /// Makes the vehicle reachable by Enode or not (`isReachable`), as a car
    /// in a garage without reception would be.
    pub fn set_reachable(&self, vehicle: &str, reachable: bool) -> Result<(), SimError> {
        let mut st = self.lock();
        let v = st
            .vehicles
            .get_mut(vehicle)
            .ok_or_else(|| SimError::UnknownVehicle(vehicle.into()))?;
        v.reachable = reachable;
        drop(st);
        self.wake_deliverer();
        Ok(())
    }

    /// Turns Enode's own smart charging of a vehicle on or off, optionally
    /// with a new "HH:MM" UTC deadline.
    pub fn set_smart_charging(
        &self,
        vehicle: &str,
        enabled: bool,
        deadline: Option<&str>,
    ) -> Result<(), SimError> {
        if let Some(d) = deadline.filter(|d| !valid_deadline(d)) {
            return Err(SimError::BadDeadline(d.into()));
        }
        let mut st = self.lock();
        let v = st
            .vehicles
            .get_mut(vehicle)
            .ok_or_else(|| SimError::UnknownVehicle(vehicle.into()))?;
        v.policy_enabled = enabled;
        if let Some(d) = deadline {
            v.policy_deadline = d.into();
        }
        drop(st);
        self.wake_deliverer();
        Ok(())
    }

    /// The exact state of a vehicle now.
    pub fn vehicle(&self, id: &str) -> Option<VehicleSnapshot> {
        let now = self.now();
        let mut st = self.lock();
        let v = st.vehicles.get_mut(id)?;
        v.settle(now);
        Some(VehicleSnapshot {
            id: v.id.clone(),
            user: v.user.clone(),
            soc: v.soc_at(now),
            charge_limit: v.charge_limit,
            capacity_kwh: v.capacity_kwh,
            charge_kw: v.charge_kw,
            plugged_in: v.plugged_in,
            charging: v.charging_at(now),
            location: v.location.clone(),
            reason: v.reasons_at(now).into(),
            smart_charging_enabled: v.policy_enabled,
            energy_kwh: v.energy_kwh,
            segments: v.segments.clone(),
        })
    }

    /// Ids of every vehicle, sorted.
    pub fn vehicle_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().vehicles.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Ids of every user, sorted.
    pub fn user_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().users.keys().cloned().collect();
        ids.sort();
        ids
    }
}
