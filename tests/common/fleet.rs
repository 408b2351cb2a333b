//! A simulated fleet for daemon tests: users, vehicles with evening
//! plug-ins and morning departures, a config on the real DE-LU prices, and
//! the cost of what the simulator really charged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use enode_sim::Scenario;
use smartcharged::config::Config;
use smartcharged::store::Store;
use smartcharged::users::{User, UserId, UserStatus};

/// Noon UTC on Monday 2024-03-04: the day the fleet tests simulate.
pub fn day_start() -> DateTime<Utc> {
    smartcharged::demo::day_start()
}

/// The demo fleet at any size.
pub fn scenario(users: usize, vehicles: usize) -> Scenario {
    smartcharged::demo::scenario(users, vehicles)
}

/// Stores every scenario user as linked, with tokens from the simulator.
pub fn link_all(sim: &enode_sim::Sim, store_path: &Path, now: DateTime<Utc>) {
    link_all_with(sim, store_path, now, |_| "TESLA");
}

/// [`link_all`], each user linked with the vendor `vendor` names for it.
pub fn link_all_with(
    sim: &enode_sim::Sim,
    store_path: &Path,
    now: DateTime<Utc>,
    vendor: impl Fn(&str) -> &'static str,
) {
    let store = Store::open(store_path).unwrap();
    for id in sim.handle.user_ids() {
        let tokens = super::granted(sim, &id, now);
        let user = User {
            vendor: Some(vendor(&id).into()),
            id: UserId::new(id).unwrap(),
            status: UserStatus::Active,
            linked_at: now,
        };
        store.save_linked_user(&user, &tokens).unwrap();
    }
}

/// Wallbox power per vehicle, from the simulator's scenario.
pub fn wallboxes(scenario: &Scenario) -> String {
    smartcharged::demo::wallboxes(scenario)
}

/// The daemon's config for the simulator, a store and extra policy lines,
/// on the DE-LU price file in tests/data.
pub fn config_text(sim: &enode_sim::Sim, store: &Path, policy_extra: &str) -> String {
    let prices =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prices/DE-LU-2023-2025.csv");
    smartcharged::demo::config_text(&sim.base_url(), store, &prices, policy_extra)
}

/// Parses a config text as the daemon would.
pub fn config(text: &str, dir: &Path) -> Config {
    let env =
        |k: &str| (k == "SMARTCHARGED_CLIENT_SECRET").then(|| super::CLIENT_SECRET.to_owned());
    Config::parse(text, &dir.join("smartcharged.toml"), &env)
        .unwrap_or_else(|e| panic!("test config: {e}"))
}

/// Hourly spot prices (EUR/MWh) of the DE-LU file, by hour start.
pub fn spot_prices() -> BTreeMap<DateTime<Utc>, f64> {
    smartcharged::demo::spot_prices()
}

/// What the simulator really charged a vehicle from `from` on, in EUR at
/// spot prices (the test config's tariff), and the kWh.
pub fn charged_cost(
    snap: &enode_sim::VehicleSnapshot,
    spot: &BTreeMap<DateTime<Utc>, f64>,
    from: DateTime<Utc>,
) -> (f64, f64) {
    smartcharged::demo::charged(&snap.segments, spot, from)
}

/// A simulated day.
pub const DAY: Duration = Duration::from_secs(24 * 3600);

/// A daemon on paused time against a simulator, with its event stream.
pub struct Running {
    /// The simulator.
    pub sim: enode_sim::Sim,
    /// The daemon.
    pub daemon: smartcharged::daemon::run::Daemon,
    /// Plans and commands as they happen.
    pub events: tokio::sync::mpsc::UnboundedReceiver<smartcharged::daemon::fleet::FleetEvent>,
    /// The shared clock.
    pub clock: clock::Clock,
    /// The store directory.
    pub store: std::path::PathBuf,
    /// The config text the daemon runs on.
    pub config_text: String,
    /// Keeps the temp dir.
    pub dir: tempfile::TempDir,
}

/// Starts a simulator for `scenario` and a daemon linked to all its users,
/// on a paused clock at [`day_start`]; `policy_extra` goes into `[policy]`.
pub async fn start(scenario: Scenario, policy_extra: &str) -> Running {
    start_with(scenario, policy_extra, "").await
}

/// [`start`], with `config_extra` (whole sections) after the config.
pub async fn start_with(scenario: Scenario, policy_extra: &str, config_extra: &str) -> Running {
    let clock = clock::Clock::starting_at(day_start());
    let policy = format!("{policy_extra}{}", wallboxes(&scenario));
    let sim = enode_sim::spawn(scenario, clock.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    link_all(&sim, &store, clock.now());
    let config_text = format!("{}{config_extra}", config_text(&sim, &store, &policy));
    let (daemon, events) = restart(&config_text, dir.path(), &clock).await;
    Running {
        sim,
        daemon,
        events,
        clock,
        store,
        config_text,
        dir,
    }
}

/// Runs the daemon for a whole simulated [`DAY`] on `scenario` with the
/// default policy, shuts it down, and returns the simulator (for its
/// counters) and every plan and command the day produced.
pub async fn run_day(
    scenario: Scenario,
) -> (
    enode_sim::Sim,
    tokio::sync::mpsc::UnboundedReceiver<smartcharged::daemon::fleet::FleetEvent>,
) {
    let r = start(scenario, "").await;
    r.clock.sleep(DAY).await;
    r.daemon.shutdown().await.unwrap();
    (r.sim, r.events)
}

/// Starts a daemon on an existing store (a restart).
pub async fn restart(
    config_text: &str,
    dir: &Path,
    clock: &clock::Clock,
) -> (
    smartcharged::daemon::run::Daemon,
    tokio::sync::mpsc::UnboundedReceiver<smartcharged::daemon::fleet::FleetEvent>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let daemon = smartcharged::daemon::run::Daemon::start(
        config(config_text, dir),
        smartcharged::daemon::run::Options {
            clock: clock.clone(),
            cron: false,
            events: Some(tx),
            seed: 7,
        },
    )
    .await
    .unwrap();
    (daemon, rx)
}

/// The commands sent so far, per vehicle, in order.
pub fn drain_commands(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<smartcharged::daemon::fleet::FleetEvent>,
) -> Vec<smartcharged::store::JournalEntry> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let smartcharged::daemon::fleet::FleetEvent::Command(c) = e {
            out.push(c);
        }
    }
    out
}
