//! `smartcharged demo`: the real daemon against an in-process enode-sim,
//! with no config, no key and no network: 3 users, 6 vehicles, a real day
//! of DE-LU prices, time sped up so a day takes about a minute. It prints
//! each plan as a chart, each command as it is sent, and a final table.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use chrono::TimeDelta;
use clock::Clock;
use tokio::sync::mpsc;

use super::{exit, CmdResult, Failure};
use crate::config::Config;
use crate::daemon::control::ActivePlan;
use crate::daemon::fleet::FleetEvent;
use crate::daemon::run::{Daemon, Options};
use crate::demo;
use crate::store::Store;
use crate::users::{User, UserId, UserStatus};

/// The demo's market zone (DE-LU): its output shows local times here.
const TZ: chrono_tz::Tz = chrono_tz::Europe::Berlin;

/// Arguments of `demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Simulated seconds per real second (1440: a day in a minute).
    #[arg(long, default_value_t = 1440.0)]
    pub speed: f64,
    /// Simulated hours to run, from noon.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Users in the fleet.
    #[arg(long, default_value_t = 3)]
    pub users: usize,
    /// Vehicles in the fleet.
    #[arg(long, default_value_t = 6)]
    pub vehicles: usize,
}

/// Runs the demo and prints its report.
pub fn run(args: DemoArgs) -> CmdResult {
    if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= 100_000.0) {
        return Err(Failure::new(
            exit::DATAERR,
            anyhow::anyhow!("--speed must be between 0 and 100000"),
        ));
    }
    if args.users == 0 || args.vehicles < args.users || args.hours == 0 {
        return Err(Failure::new(
            exit::DATAERR,
            anyhow::anyhow!("--users, --vehicles and --hours must be positive, with at least one vehicle per user"),
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(demo_main(args))
}

async fn demo_main(args: DemoArgs) -> CmdResult {
    let dir = tempfile::tempdir()?;
    let clock = Clock::scaled(demo::day_start(), args.speed);
    let scenario = demo::scenario(args.users, args.vehicles);
    let wallboxes = demo::wallboxes(&scenario);
    let sim = enode_sim::spawn(scenario, clock.clone())
        .await
        .context("cannot start the simulator")?;
    let prices = dir.path().join("prices.csv");
    std::fs::write(&prices, demo::PRICES_CSV)?;
    let store_path = dir.path().join("store");
    {
        // Link every user (the simulator's shortcut for a browser flow).
        let store = Store::open(&store_path)?;
        for id in sim.handle.user_ids() {
            let t = sim.handle.grant_tokens(&id, "offline_access all")?;
            let tokens = crate::model::TokenSet {
                access_token: crate::secret::Secret::new(t.access_token),
                refresh_token: t.refresh_token.map(crate::secret::Secret::new),
                expires_at: clock.now() + TimeDelta::seconds(t.expires_in),
                scopes: vec!["offline_access".into(), "all".into()],
            };
            let user = User {
                id: UserId::new(id)?,
                status: UserStatus::Active,
                linked_at: clock.now(),
                vendor: None,
            };
            store.save_linked_user(&user, &tokens)?;
        }
    }
    let text = demo::config_text(&sim.base_url(), &store_path, &prices, &wallboxes);
    let env =
        |k: &str| (k == crate::config::SECRET_ENV).then(|| demo::SIM_CLIENT_SECRET.to_owned());
    let config =
        Config::parse(&text, &dir.path().join("demo.toml"), &env).context("demo config")?;
    println!(
        "smartcharged demo: {} users, {} vehicles, {} h from {} ({TZ}), {}x speed; prices: DE-LU day-ahead; times in {TZ}",
        args.users,
        args.vehicles,
        args.hours,
        demo::day_start().with_timezone(&TZ).format("%Y-%m-%d %H:%M"),
        args.speed
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let daemon = Daemon::start(
        config,
        Options {
            clock: clock.clone(),
            cron: false,
            events: Some(tx),
            seed: 7,
        },
    )
    .await?;
    let run_for = clock.real_duration(Duration::from_secs(u64::from(args.hours) * 3600));
    let deadline = tokio::time::Instant::now() + run_for;
    let mut first: HashMap<String, ActivePlan> = HashMap::new();
    let spot = demo::spot_prices();
    let mut out = std::io::stdout();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            Some(e) = rx.recv() => match e {
                FleetEvent::Planned { vehicle, reason, plan, .. } => {
                    let slots = plan_slots(&spot, &plan);
                    writeln!(out, "\n── {} plan for {vehicle} ({reason}), soc {:.0} %, deadline {} ──",
                        clock.now().with_timezone(&TZ).format("%H:%M"), plan.soc_at_plan, plan.deadline.with_timezone(&TZ).format("%m-%d %H:%M"))?;
                    if plan.plan.blocks.is_empty() {
                        writeln!(out, "nothing to charge")?;
                    } else if !slots.is_empty() {
                        write!(out, "{}", super::plan::chart(&slots, plan.made_at, plan.deadline, &plan.plan, TZ))?;
                    }
                    first.entry(vehicle).or_insert(plan);
                }
                FleetEvent::Command(c) => {
                    writeln!(out, "{} {:<5} {} ({}){}{}", c.at.with_timezone(&TZ).format("%m-%d %H:%M"), c.action, c.vehicle, c.reason,
                        c.price.map(|p| format!(", {p:.4} EUR/kWh")).unwrap_or_default(),
                        if c.result == "ok" { String::new() } else { format!(": {}", c.result) })?;
                }
            }
        }
    }
    daemon.shutdown().await?;
    report(&sim, &first, &mut out)?;
    Ok(())
}

/// The hourly price slots (per kWh) a plan spans, for its chart.
fn plan_slots(
    spot: &std::collections::BTreeMap<chrono::DateTime<chrono::Utc>, f64>,
    plan: &ActivePlan,
) -> Vec<planner::PriceSlot> {
    spot.range(plan.made_at - TimeDelta::hours(1)..plan.deadline)
        .map(|(&start, &p)| planner::PriceSlot {
            start,
            end: start + TimeDelta::hours(1),
            price_per_kwh: p / 1000.0,
        })
        .filter(|s| s.end > plan.made_at)
        .collect()
}

/// The final table: per vehicle energy, cost, cost at once, saving, deadline.
fn report(
    sim: &enode_sim::Sim,
    first: &HashMap<String, ActivePlan>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let spot = demo::spot_prices();
    writeln!(
        out,
        "\n{:<10} {:>8} {:>9} {:>9} {:>9} {:>7}  deadline",
        "vehicle", "kWh", "cost", "at once", "saving", "%"
    )?;
    let (mut tc, mut ta) = (0.0, 0.0);
    for id in sim.handle.vehicle_ids() {
        let Some(v) = sim.handle.vehicle(&id) else {
            continue;
        };
        let (cost, _) = demo::charged(&v.segments, &spot, chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let (asap, target) = match first.get(&id) {
            Some(p) => (p.plan.asap_cost, 80.0f64.min(v.charge_limit)),
            None => (cost, 0.0),
        };
        let met = if first.contains_key(&id) {
            if v.soc + 0.5 >= target {
                "met"
            } else {
                "MISSED"
            }
        } else {
            "not planned"
        };
        let pct = if asap.abs() > 1e-9 {
            (asap - cost) / asap * 100.0
        } else {
            0.0
        };
        writeln!(out, "{id:<10} {:>8.1} {cost:>9.2} {asap:>9.2} {:>9.2} {pct:>6.1}%  {met} ({:.0} % at departure)", v.energy_kwh, asap - cost, v.soc)?;
        tc += cost;
        ta += asap;
    }
    let pct = if ta.abs() > 1e-9 {
        (ta - tc) / ta * 100.0
    } else {
        0.0
    };
    writeln!(
        out,
        "{:<10} {:>8} {tc:>9.2} {ta:>9.2} {:>9.2} {pct:>6.1}%",
        "total",
        "",
        ta - tc
    )?;
    writeln!(out, "costs in EUR at day-ahead spot prices; 'at once' is charging the same energy from plug-in without pause")?;
    Ok(())
}
