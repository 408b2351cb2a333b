//! The demo fleet: a simulated set of users and vehicles with evening
//! plug-ins and morning departures, and the daemon config that points at
//! the in-process simulator. `smartcharged demo` runs it; the daemon tests
//! use the same fleet at a larger size.

use std::path::Path;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use enode_sim::{EventAction, EventSpec, LocationSpec, Scenario, UserSpec, VehicleSpec, When};

/// Real DE-LU day-ahead prices (2023-2025, hourly, EUR/MWh), the demo's
/// price file.
pub const PRICES_CSV: &str = include_str!("../tests/data/prices/DE-LU-2023-2025.csv");

/// Noon UTC on Monday 2024-03-04: the day the demo and tests simulate.
pub fn day_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// `users` users sharing `vehicles` vehicles, starting at [`day_start`]:
/// varied capacity, power, limit and SoC; plugged in between 17:00 and
/// 21:00 CET, unplugged at 07:05 the next morning; every other car starts
/// charging on plug-in by itself, as many do.
pub fn scenario(users: usize, vehicles: usize) -> Scenario {
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
            v.charge_kw = [7.4, 11.0, 11.0, 11.1][n % 4];
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
        start: Some(day_start()),
        users: list,
        ..Scenario::default()
    }
}

/// `[[policy.vehicles]]` entries giving each vehicle its wallbox power, as
/// an owner would configure it.
pub fn wallboxes(scenario: &Scenario) -> String {
    scenario
        .users
        .iter()
        .flat_map(|u| &u.vehicles)
        .map(|v| {
            format!(
                "\n[[policy.vehicles]]\nid = \"{}\"\nmax_power_kw = {}\n",
                v.id, v.charge_kw
            )
        })
        .collect()
}

/// The daemon's config for a simulator at `base_url` (`http://ADDR`), a
/// store directory, a price CSV, and extra policy lines (which may end
/// with `[[policy.vehicles]]` tables). The client secret is the
/// simulator's and comes from the environment hook of the loader.
pub fn config_text(base_url: &str, store: &Path, prices_csv: &Path, policy_extra: &str) -> String {
    config_text_in(
        base_url,
        store,
        prices_csv,
        policy_extra,
        "Europe/Berlin",
        "",
    )
}

/// [`config_text`] for a market in zone `tz` (prices and deadlines), with
/// `prices_extra` lines in `[prices]` (e.g. a `publication_time`).
pub fn config_text_in(
    base_url: &str,
    store: &Path,
    prices_csv: &Path,
    policy_extra: &str,
    tz: &str,
    prices_extra: &str,
) -> String {
    format!(
        r#"
[enode]
api_url = "{base_url}/"
auth_url = "{base_url}/oauth2/auth"
token_url = "{base_url}/oauth2/token"
client_id = "smartcharged"

[store]
path = "{store}"

[admin]
socket = "{store}.sock"

[prices]
provider = "file"
time_zone = "{tz}"
currency = "EUR"
{prices_extra}

[prices.file]
path = "{prices}"
poll_every = "1h"

[policy]
time_zone = "{tz}"
deadline = "07:00"
target_percent = 80
efficiency = 1.0
{policy_extra}
"#,
        store = store.display(),
        prices = prices_csv.display(),
    )
}

/// The simulator's client secret, for the config loader's environment.
pub const SIM_CLIENT_SECRET: &str = "sim-secret";

/// The hourly spot prices of [`PRICES_CSV`] (EUR/MWh), by hour start.
pub fn spot_prices() -> std::collections::BTreeMap<DateTime<Utc>, f64> {
    PRICES_CSV
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (t, p) = l.split_once(',')?;
            Some((t.parse().ok()?, p.trim().parse().ok()?))
        })
        .collect()
}

/// What charging `segments` cost at spot prices (EUR per kWh = EUR/MWh /
/// 1000, the demo's tariff), counting only time from `from` on; returns
/// (cost, kWh). Hours without a price cost nothing.
pub fn charged(
    segments: &[enode_sim::ChargeSegment],
    spot: &std::collections::BTreeMap<DateTime<Utc>, f64>,
    from: DateTime<Utc>,
) -> (f64, f64) {
    use chrono::DurationRound;
    let (mut cost, mut kwh) = (0.0, 0.0);
    for seg in segments {
        let hours = (seg.to - seg.from).num_milliseconds() as f64 / 3_600_000.0;
        if hours <= 0.0 {
            continue;
        }
        let kw = seg.kwh / hours;
        let mut t = seg.from.max(from);
        while t < seg.to {
            let hour = t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t);
            let next = (hour + TimeDelta::hours(1)).min(seg.to);
            let h = (next - t).num_milliseconds() as f64 / 3_600_000.0;
            cost += kw * h * spot.get(&hour).copied().unwrap_or(0.0) / 1000.0;
            kwh += kw * h;
            t = next;
        }
    }
    (cost, kwh)
}
