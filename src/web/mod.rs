//! What the read-only TCP listener shows people and scrapers, all views of
//! the read model's [`Snapshot`](crate::daemon::readmodel::Snapshot): the
//! status page of `GET /` ([`page`], with its SVG [`chart`]) and the state
//! metrics of `GET /metrics` (the counters live in [`crate::metrics`]).
//!
//! Everything here is a view of the daemon's state: it computes nothing
//! the controller does not already know, and changes nothing.

pub mod chart;
pub mod page;

use crate::daemon::readmodel;
use crate::metrics::{MonthSavings, Snapshot, VEHICLE_STATES};
use crate::users::UserStatus;

/// The state metrics of a read-model snapshot: users by status, vehicles
/// by the read model's coarse state, the age and reach of the prices.
/// Nothing is derived here that the read model does not already say.
pub fn metrics_snapshot(snap: &readmodel::Snapshot) -> Snapshot {
    let now = snap.taken_at;
    let mut users = vec![("active", 0u64), ("needs_relink", 0), ("unlinking", 0)];
    for (status, n) in snap.users_by_status() {
        let i = match status {
            UserStatus::Active => 0,
            UserStatus::NeedsRelink => 1,
            UserStatus::Unlinking => 2,
        };
        users[i].1 += n as u64;
    }
    let mut vehicles: Vec<(&'static str, u64)> = VEHICLE_STATES.iter().map(|s| (*s, 0)).collect();
    for (state, n) in snap.vehicles_by_state() {
        match vehicles.iter_mut().find(|(s, _)| *s == state) {
            Some((_, c)) => *c += n as u64,
            None => vehicles.push((state, n as u64)),
        }
    }
    Snapshot {
        users,
        vehicles,
        price_fetch_age_seconds: snap
            .prices
            .last_fetch
            .as_ref()
            .map(|f| (now - f.at).as_seconds_f64().max(0.0)),
        price_horizon_seconds: snap
            .prices
            .known_until
            .map(|end| (end - now).as_seconds_f64()),
        uptime_seconds: snap.uptime_seconds.max(0) as f64,
        month: Some(MonthSavings {
            currency: snap.prices.currency.clone().unwrap_or_default(),
            energy_kwh: snap.month.total.energy_kwh,
            cost: snap.month.total.cost,
            at_once_cost: snap.month.total.at_once_cost,
            sessions: u64::from(snap.month.total.sessions),
        }),
    }
}
