//! What the read-only TCP listener shows people and scrapers: the state
//! metrics of `GET /metrics` (the counters live in [`crate::metrics`]).
//!
//! Everything here is a view of the daemon's state: it computes nothing
//! the controller does not already know, and changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::daemon::control::ControlState;
use crate::daemon::fleet::Fleet;
use crate::metrics::{Metrics, Snapshot, VEHICLE_STATES};
use crate::users::UserStatus;

/// The one state a vehicle is counted in (see [`VEHICLE_STATES`]).
pub fn vehicle_state(s: &ControlState) -> &'static str {
    if s.unreachable {
        "unreachable"
    } else if s.unresponsive {
        "unresponsive"
    } else if s.suspended.is_some() {
        "suspended"
    } else if s.charging == Some(true) {
        "charging"
    } else if s.session {
        "waiting"
    } else {
        "away"
    }
}

/// The state metrics now: users by status (from the store), vehicles by
/// state (the fleet's view, else the stored state of vehicles not polled
/// since start), the age and reach of the prices.
pub fn snapshot(fleet: &Fleet, metrics: &Metrics, started_at: DateTime<Utc>) -> Snapshot {
    let now = fleet.clock.now();
    let mut users = [("active", 0u64), ("needs_relink", 0)];
    match fleet.store.users() {
        Ok(list) => {
            for u in list {
                let i = match u.status {
                    UserStatus::Active => 0,
                    UserStatus::NeedsRelink => 1,
                };
                users[i].1 += 1;
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read users"),
    }
    let mut counts: HashMap<&'static str, u64> = VEHICLE_STATES.iter().map(|s| (*s, 0)).collect();
    // Read before the view is locked: the fleet's tasks publish into it.
    let stored = fleet.store.controls().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "metrics: cannot read control states");
        Vec::new()
    });
    {
        let view = fleet.view.lock().expect("view lock");
        let unpolled = stored.iter().filter(|(id, _)| !view.contains_key(id));
        for s in view.values().chain(unpolled.map(|(_, s)| s)) {
            *counts.entry(vehicle_state(s)).or_default() += 1;
        }
    }
    let vehicles = VEHICLE_STATES
        .iter()
        .map(|s| (*s, counts.get(s).copied().unwrap_or(0)))
        .collect();
    let horizon = fleet
        .prices
        .borrow()
        .as_deref()
        .and_then(|c| c.end())
        .map(|end| (end - now).as_seconds_f64());
    Snapshot {
        users: users.to_vec(),
        vehicles,
        price_fetch_age_seconds: metrics
            .last_price_fetch()
            .map(|t| (now - t).as_seconds_f64().max(0.0)),
        price_horizon_seconds: horizon,
        uptime_seconds: (now - started_at).as_seconds_f64().max(0.0),
    }
}
