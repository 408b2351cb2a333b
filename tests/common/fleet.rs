//! A simulated fleet for daemon tests: users, vehicles with evening
//! plug-ins and morning departures, a config on the real DE-LU prices, and
//! the cost of what the simulator really charged.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Timelike, Utc};
use enode_sim::{EventAction, EventSpec, LocationSpec, Scenario, UserSpec, VehicleSpec, When};
use smartcharged::config::Config;
use smartcharged::store::Store;
use smartcharged::users::{User, UserId, UserStatus};

/// Noon UTC on Monday 2024-03-04: the day the fleet tests simulate.
pub fn day_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap()
}

/// `users` users with `per_user` vehicles each (the last users get fewer
/// when `vehicles` is smaller): plugged in between 17:00 and 21:00 local
/// time (CET), unplugged at 07:05 the next morning.
pub fn scenario(users: usize, vehicles: usize) -> Scenario {
    let start = day_start();
    let mut list = Vec::new();
    let mut n = 0;
    for u in 0..users {
        let mut user = UserSpec::new(format!("user-{u}"));
        let mut home = LocationSpec::new(format!("home-{u}"));
        home.name = "Home".into();
        user.locations.push(home);
        let mine = vehicles / users + usize::from(u < vehicles % users);
        for k in 0..mine {
            let mut v = VehicleSpec::new(format!("car-{u}-{k}"));
            v.capacity_kwh = [50.0, 64.0, 75.0, 82.0, 100.0][n % 5];
            v.charge_kw = [7.4, 11.0, 11.0, 3.7 * 3.0][n % 4];
            v.charge_limit = [80.0, 90.0, 100.0][n % 3];
            v.soc = 20.0 + (n * 7 % 40) as f64;
            v.location = Some(format!("home-{u}"));
            v.plugged_in = false;
            v.charge_on_plug_in = n % 2 == 0;
            // 16:00-20:00 UTC is 17:00-21:00 CET.
            let plug = TimeDelta::hours(4) + TimeDelta::minutes((n as i64 * 47) % 240);
            let leave = TimeDelta::hours(18) + TimeDelta::minutes(5);
            v.events = vec![
                EventSpec::new(When::After(plug), EventAction::PlugIn),
                EventSpec::new(When::After(leave), EventAction::Unplug),
            ];
            user.vehicles.push(v);
            n += 1;
        }
        list.push(user);
    }
    Scenario {
        start: Some(start),
        users: list,
        ..Scenario::default()
    }
}

/// Stores every scenario user as linked, with tokens from the simulator.
pub fn link_all(sim: &enode_sim::Sim, store_path: &Path, now: DateTime<Utc>) {
    let store = Store::open(store_path).unwrap();
    for id in sim.handle.user_ids() {
        let tokens = super::granted(sim, &id, now);
        let user = User {
            id: UserId(id),
            status: UserStatus::Active,
            linked_at: now,
            vendor: Some("TESLA".into()),
        };
        store.save_linked_user(&user, &tokens).unwrap();
    }
}

/// `[[policy.vehicles]]` entries giving each vehicle its wallbox power, as
/// an owner would configure it.
pub fn wallboxes(sim: &enode_sim::Sim) -> String {
    sim.handle
        .vehicle_ids()
        .iter()
        .map(|id| {
            let kw = sim.handle.vehicle(id).unwrap().charge_kw;
            format!("\n[[policy.vehicles]]\nid = \"{id}\"\nmax_power_kw = {kw}\n")
        })
        .collect()
}

/// The daemon's config text for a simulator, a store directory and extra
/// `[policy]` lines (which may add `[[policy.vehicles]]` tables at the end).
pub fn config_text(sim: &enode_sim::Sim, store: &Path, policy_extra: &str) -> String {
    let prices = format!(
        "{}/tests/data/prices/DE-LU-2023-2025.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    format!(
        r#"
[enode]
api_url = "{api}/"
auth_url = "{auth}"
token_url = "{token}"
client_id = "{client}"
client_secret = "{secret}"

[store]
path = "{store}"

[prices]
provider = "file"
time_zone = "Europe/Berlin"
currency = "EUR"

[prices.file]
path = "{prices}"
poll_every = "1h"

[policy]
time_zone = "Europe/Berlin"
deadline = "07:00"
target_percent = 80
efficiency = 1.0
{policy_extra}
"#,
        api = sim.base_url(),
        auth = sim.auth_url(),
        token = sim.token_url(),
        client = super::CLIENT_ID,
        secret = super::CLIENT_SECRET,
        store = store.display(),
    )
}

/// Parses a config text as the daemon would.
pub fn config(text: &str, dir: &Path) -> Config {
    Config::parse(text, &dir.join("smartcharged.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("test config: {e}"))
}

/// Hourly spot prices (EUR/MWh) of the DE-LU file, by hour start.
pub fn spot_prices() -> HashMap<DateTime<Utc>, f64> {
    let path = format!(
        "{}/tests/data/prices/DE-LU-2023-2025.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let (t, p) = l.split_once(',')?;
            Some((t.parse().ok()?, p.trim().parse().ok()?))
        })
        .collect()
}

/// What the simulator really charged a vehicle from `from` on, in EUR at
/// spot prices (the test config's tariff), and the kWh.
pub fn charged_cost(
    snap: &enode_sim::VehicleSnapshot,
    spot: &HashMap<DateTime<Utc>, f64>,
    from: DateTime<Utc>,
) -> (f64, f64) {
    let (mut cost, mut kwh) = (0.0, 0.0);
    for seg in &snap.segments {
        let kw = seg.kwh / ((seg.to - seg.from).num_milliseconds() as f64 / 3_600_000.0).max(1e-12);
        let mut t = seg.from.max(from);
        while t < seg.to {
            let hour = t
                .with_minute(0)
                .unwrap()
                .with_second(0)
                .unwrap()
                .with_nanosecond(0)
                .unwrap();
            let next = (hour + TimeDelta::hours(1)).min(seg.to);
            let h = (next - t).num_milliseconds() as f64 / 3_600_000.0;
            cost += kw * h * spot[&hour] / 1000.0;
            kwh += kw * h;
            t = next;
        }
    }
    (cost, kwh)
}

/// A simulated day.
pub const DAY: Duration = Duration::from_secs(24 * 3600);
