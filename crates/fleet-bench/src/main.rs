//! `fleet-bench`: the smartcharged daemon against enode-sim, as two
//! separate processes on one virtual clock running faster than real time,
//! and what that costs the daemon: CPU per simulated hour, peak memory,
//! Enode requests per vehicle-day, block-edge lateness, deadlines and cost;
//! or, with `--startup-users N`, the time from spawn to READY with N linked
//! users. BENCHMARKS.md has the commands and the numbers.
//!
//! It finds `smartcharged` and `enode-sim` next to its own executable
//! (`cargo build --release --workspace --bins` puts them there) or in `--bin-dir`.

mod analysis;
mod fleet;
mod procs;
mod report;

use std::collections::HashMap;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use clock::{Clock, VirtualClockSpec};
use enode_sim::{Scenario, Stats, UserTokens, VehicleSnapshot, When};
use serde::de::DeserializeOwned;

use analysis::{Arrival, Percentiles};
use procs::{NotifySocket, Proc};
use report::{
    Cost, DaemonNumbers, DayReport, Deadlines, EnodeNumbers, Hour, SimNumbers, StartupReport,
};

/// Fleet benchmark of the smartcharged daemon against enode-sim.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Vehicles in the fleet.
    #[arg(long, default_value_t = 1000)]
    vehicles: usize,
    /// Vehicles per user (household).
    #[arg(long, default_value_t = 1)]
    vehicles_per_user: usize,
    /// Simulated hours to measure, from READY on.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Where in the simulated day the run starts, as an offset from noon
    /// UTC of the scenario day (e.g. +13h: 01:00 UTC, every car plugged in).
    #[arg(long, default_value = "+0s", allow_hyphen_values = true)]
    from: When,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 120.0)]
    speed: f64,
    /// Seed of the fleet.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Instead of a day: fill a store with this many linked users and
    /// measure spawn to READY and the memory at READY.
    #[arg(long, value_name = "USERS")]
    startup_users: Option<usize>,
    /// Simulated latency of every Enode API answer, in milliseconds of
    /// clock time (real Enode answers take a few hundred).
    #[arg(long, default_value_t = 0)]
    enode_latency_ms: u64,
    /// Enable `[webhooks]` and have the simulator push vehicle changes to
    /// the daemon (polling becomes a safety net).
    #[arg(long)]
    webhooks: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Where `smartcharged` and `enode-sim` are (default: next to this
    /// executable).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Keep the run's files (logs, config, scenario, store) in this
    /// directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= 10_000.0) {
        bail!("--speed must be in (0, 10000]");
    }
    if args.vehicles == 0
        || args.vehicles_per_user == 0
        || !args.hours.is_finite()
        || args.hours <= 0.0
    {
        bail!("--vehicles, --vehicles-per-user and --hours must be positive");
    }
    let tmp;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };
    let bins = Bins {
        daemon: procs::binary(args.bin_dir.as_deref(), "smartcharged")?,
        sim: procs::binary(args.bin_dir.as_deref(), "enode-sim")?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(users) = args.startup_users {
        let r = rt.block_on(startup(&bins, &dir, users, args.seed))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            print!("{}", r.text());
        }
    } else {
        let r = rt.block_on(day(&bins, &dir, args))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            print!("{}", r.text());
        }
    }
    Ok(())
}

/// The binaries under test.
struct Bins {
    /// `smartcharged`.
    daemon: PathBuf,
    /// `enode-sim`.
    sim: PathBuf,
}

/// A running simulator and how to reach it.
struct SimProc {
    /// The process.
    proc: Proc,
    /// `http://ADDR`.
    base: String,
    /// HTTP client for its `/_sim` endpoints.
    http: reqwest::Client,
}

impl SimProc {
    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await?;
        let r = r.error_for_status()?;
        Ok(r.json().await?)
    }

    async fn add_latency(&self, millis: u64) -> anyhow::Result<()> {
        self.http
            .post(format!("{}/_sim/faults", self.base))
            .json(&serde_json::json!({
                "kind": {"type": "latency", "millis": millis},
                "target": "api",
                "trigger": {"type": "always"},
            }))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    async fn grant_all(&self) -> anyhow::Result<Vec<UserTokens>> {
        let r = self
            .http
            .post(format!("{}/_sim/grant-tokens", self.base))
            .json(&serde_json::json!({ "scopes": "offline_access all" }))
            .send()
            .await?
            .error_for_status()?;
        Ok(r.json().await?)
    }
}

/// Writes the scenario and starts the simulator on `spec`.
fn start_sim(
    bins: &Bins,
    dir: &Path,
    scenario: &Scenario,
    spec: &VirtualClockSpec,
) -> anyhow::Result<SimProc> {
    let path = dir.join("scenario.toml");
    procs::write(
        &path,
        &toml::to_string(scenario).context("cannot write the scenario")?,
    )?;
    let args = [
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--scenario".to_owned(),
        path.display().to_string(),
        "--virtual-clock".to_owned(),
        spec.to_string(),
    ];
    let (proc, addr) = procs::spawn_sim(&bins.sim, &args, &dir.join("enode-sim.log"))?;
    Ok(SimProc {
        proc,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    })
}

/// A started daemon: the process, its log reader and its start-up numbers.
struct DaemonProc {
    /// The process.
    proc: Proc,
    /// Reads its log to the end.
    log: std::thread::JoinHandle<(Vec<analysis::PlanLine>, analysis::LogSummary)>,
    /// Spawn to READY, real seconds.
    ready_s: f64,
    /// Kept open: the daemon reports status and STOPPING here too.
    notify: NotifySocket,
}

/// Writes the config and prices, starts the daemon and waits for READY.
fn start_daemon(
    bins: &Bins,
    dir: &Path,
    sim: &SimProc,
    policy: &str,
    spec: &VirtualClockSpec,
    webhooks: Option<&Webhooks>,
) -> anyhow::Result<DaemonProc> {
    let prices = dir.join("prices.csv");
    procs::write(&prices, smartcharged::demo::PRICES_CSV)?;
    let config = dir.join("smartcharged.toml");
    let mut text = fleet::config_text(&sim.base, &dir.join("store"), &prices, policy);
    if let Some(w) = webhooks {
        text = text.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{}\"", w.listen),
        );
        text.push_str(&format!(
            "\n[webhooks]\nsecret_file = \"{}\"\n",
            w.secret_file.display()
        ));
    }
    procs::write(&config, &text)?;
    let notify_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&notify_path);
    let notify = NotifySocket::bind(&notify_path)?;
    let args = [
        "run".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
        "--virtual-clock".to_owned(),
        spec.to_string(),
    ];
    let spawned = tokio::time::Instant::now();
    let (mut proc, out) = procs::spawn_daemon(
        &bins.daemon,
        &args,
        &[(
            "SMARTCHARGED_CLIENT_SECRET",
            smartcharged::demo::SIM_CLIENT_SECRET,
        )],
        &notify_path,
        &dir.join("smartcharged.stderr"),
    )?;
    let log_file = std::fs::File::create(dir.join("smartcharged.log"))?;
    let log = std::thread::spawn(move || {
        analysis::read_log(BufReader::new(out), BufWriter::new(log_file))
    });
    notify
        .wait_ready(&mut proc)
        .with_context(|| format!("see {}", dir.join("smartcharged.stderr").display()))?;
    Ok(DaemonProc {
        proc,
        log,
        ready_s: spawned.elapsed().as_secs_f64(),
        notify,
    })
}

/// The daemon's webhook receiver in a benchmark run.
struct Webhooks {
    /// Where the daemon listens (a free port found before it starts).
    listen: std::net::SocketAddr,
    /// The shared secret's file.
    secret_file: PathBuf,
    /// The shared secret.
    secret: String,
}

impl Webhooks {
    /// A free loopback port and a fresh secret in `dir`.
    fn new(dir: &Path) -> anyhow::Result<Webhooks> {
        let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let secret_file = dir.join("webhook-secret");
        procs::write(&secret_file, &secret)?;
        Ok(Webhooks {
            listen,
            secret_file,
            secret,
        })
    }
}

/// A virtual clock starting at `origin` now.
fn spec_at(origin: DateTime<Utc>, speed: f64) -> VirtualClockSpec {
    VirtualClockSpec {
        origin,
        anchor: Clock::system().now(),
        speed,
    }
}

async fn startup(
    bins: &Bins,
    dir: &Path,
    users: usize,
    seed: u64,
) -> anyhow::Result<StartupReport> {
    let mut scenario = Scenario::generated(users, 1, seed);
    scenario.start = Some(smartcharged::demo::day_start());
    // Real time: start-up is measured in real seconds anyway.
    let spec = spec_at(smartcharged::demo::day_start(), 1.0);
    let clock = Clock::from_spec(&spec);
    let mut sim = start_sim(bins, dir, &scenario, &spec)?;
    let seeding = tokio::time::Instant::now();
    let granted = sim.grant_all().await?;
    fleet::seed_store(&dir.join("store"), &granted, clock.now())?;
    let seed_s = seeding.elapsed().as_secs_f64();
    drop(granted);
    let store_mib = dir_size(&dir.join("store")) as f64 / (1024.0 * 1024.0);
    let spawned = tokio::time::Instant::now();
    let mut d = start_daemon(bins, dir, &sim, "", &spec, None)?;
    let pid = d.proc.pid();
    let cpu_to_ready_s = procs::cpu_seconds(pid)?;
    let rss_at_ready_mib = procs::status_mib(pid, "VmRSS")?;
    d.notify.wait_loaded(&mut d.proc)?;
    let r = StartupReport {
        users,
        seed_s,
        store_mib,
        ready_s: d.ready_s,
        cpu_to_ready_s,
        rss_at_ready_mib,
        loaded_s: spawned.elapsed().as_secs_f64(),
        cpu_to_loaded_s: procs::cpu_seconds(pid)?,
        rss_at_loaded_mib: procs::status_mib(pid, "VmRSS")?,
        peak_rss_at_loaded_mib: procs::status_mib(pid, "VmHWM")?,
        threads: procs::threads(pid),
    };
    let status = d.proc.terminate()?;
    let _ = d.log.join();
    sim.proc.terminate()?;
    if !status.success() {
        bail!("the daemon exited with {status}");
    }
    Ok(r)
}

async fn day(bins: &Bins, dir: &Path, args: &Args) -> anyhow::Result<DayReport> {
    let users = args.vehicles.div_ceil(args.vehicles_per_user);
    let start = smartcharged::demo::day_start();
    let (scenario, commutes) = fleet::scenario(users, args.vehicles_per_user, args.seed, start);
    let origin = args.from.resolve(start);
    let spec = spec_at(origin, args.speed);
    let clock = Clock::from_spec(&spec);
    let mut sim = start_sim(bins, dir, &scenario, &spec)?;
    let granted = sim.grant_all().await?;
    fleet::seed_store(&dir.join("store"), &granted, clock.now())?;
    drop(granted);
    if args.enode_latency_ms > 0 {
        sim.add_latency(args.enode_latency_ms).await?;
    }
    let policy = fleet::policy_lines(&scenario, &commutes);
    let hooks = if args.webhooks {
        Some(Webhooks::new(dir)?)
    } else {
        None
    };
    let mut d = start_daemon(bins, dir, &sim, &policy, &spec, hooks.as_ref())?;
    if let Some(w) = &hooks {
        sim.http
            .put(format!("{}/_sim/firehose", sim.base))
            .json(&serde_json::json!({
                "url": format!("http://{}/webhooks/enode", w.listen),
                "secret": w.secret,
            }))
            .send()
            .await?
            .error_for_status()?;
    }
    let (pid, sim_pid) = (d.proc.pid(), sim.proc.pid());

    let cpu_to_ready_s = procs::cpu_seconds(pid)?;
    let rss_at_ready_mib = procs::status_mib(pid, "VmRSS")?;
    let sim_cpu0 = procs::cpu_seconds(sim_pid)?;
    let stats0: Stats = sim.get("/_sim/stats").await?;
    let t0 = clock.now();
    let wall0 = tokio::time::Instant::now();
    let end = t0 + TimeDelta::milliseconds((args.hours * 3_600_000.0) as i64);

    let mut hourly = Vec::new();
    let (mut cpu_prev, mut req_prev, mut hour_start) = (cpu_to_ready_s, stats0.total_requests, t0);
    while hour_start < end {
        let hour_end = (hour_start + TimeDelta::hours(1)).min(end);
        clock.sleep_until(hour_end).await;
        if let Some(status) = d.proc.child.try_wait()? {
            bail!("the daemon exited early ({status}); see {}", dir.display());
        }
        let cpu = procs::cpu_seconds(pid)?;
        let stats: Stats = sim.get("/_sim/stats").await?;
        hourly.push(Hour {
            at: hour_start.format("%m-%d %H:%M").to_string(),
            cpu_s: cpu - cpu_prev,
            rss_mib: procs::status_mib(pid, "VmRSS")?,
            requests: stats.total_requests - req_prev,
        });
        (cpu_prev, req_prev, hour_start) = (cpu, stats.total_requests, hour_end);
    }
    let wall_s = wall0.elapsed().as_secs_f64();
    let sim_hours = (clock.now() - t0).num_milliseconds() as f64 / 3_600_000.0;
    let cpu_end = procs::cpu_seconds(pid)?;
    let peak_rss_mib = procs::status_mib(pid, "VmHWM")?;
    let threads = procs::threads(pid);
    let simulator = SimNumbers {
        cpu_s: procs::cpu_seconds(sim_pid)? - sim_cpu0,
        peak_rss_mib: procs::status_mib(sim_pid, "VmHWM")?,
    };
    let stats: Stats = sim.get("/_sim/stats").await?;
    let seconds: Vec<(i64, u32)> = sim.get("/_sim/request-seconds").await?;
    let commands: Vec<Arrival> = sim.get("/_sim/commands").await?;
    let vehicles: Vec<VehicleSnapshot> = sim.get("/_sim/vehicles").await?;
    if args.keep.is_some() {
        // For a closer look at a run.
        procs::write(
            &dir.join("commands.json"),
            &serde_json::to_string(&commands)?,
        )?;
        procs::write(
            &dir.join("vehicles.json"),
            &serde_json::to_string(&vehicles)?,
        )?;
    }
    let status = d.proc.terminate()?;
    let (plans, log) = d
        .log
        .join()
        .map_err(|_| anyhow::anyhow!("the log reader panicked"))?;
    sim.proc.terminate()?;
    if !status.success() {
        bail!("the daemon exited with {status}; see {}", dir.display());
    }

    let cpu_s = cpu_end - cpu_to_ready_s;
    let cpu_s_per_sim_hour = cpu_s / sim_hours;
    let daemon = DaemonNumbers {
        ready_s: d.ready_s,
        cpu_to_ready_s,
        cpu_s,
        cpu_s_per_sim_hour,
        core_percent_at_real_time: cpu_s_per_sim_hour / 3600.0 * 100.0,
        rss_at_ready_mib,
        peak_rss_mib,
        threads,
    };
    let vehicle_count = scenario
        .users
        .iter()
        .map(|u| u.vehicles.len())
        .sum::<usize>();
    let mut enode = enode_numbers(&stats0, &stats, vehicle_count, sim_hours);
    let (t0s, t1s) = (t0.timestamp(), clock.now().timestamp());
    let in_run: Vec<u32> = seconds
        .iter()
        .filter(|(t, _)| (t0s..t1s).contains(t))
        .map(|(_, n)| *n)
        .collect();
    let span = (t1s - t0s).max(1) as f64;
    enode.peak_per_second = in_run.iter().copied().max().unwrap_or(0);
    enode.mean_per_second = in_run.iter().map(|n| *n as f64).sum::<f64>() / span;
    enode.webhooks = args.webhooks;
    let plans_by = analysis::by_vehicle(&plans);
    let commands: Vec<Arrival> = commands.into_iter().filter(|c| c.at >= t0).collect();
    let late = analysis::lateness(&plans_by, &commands);
    let lateness_s = Percentiles::of(&late.seconds);
    let real: Vec<f64> = late.seconds.iter().map(|s| s / args.speed).collect();
    let window = t0..=clock.now();
    let plug_in: Vec<f64> = commutes
        .iter()
        .filter_map(|c| {
            let p = c.plug_in.filter(|p| window.contains(p))?;
            let first = plans_by
                .get(c.vehicle.as_str())?
                .iter()
                .find(|x| x.made_at >= p)?;
            Some((first.made_at - p).num_milliseconds() as f64 / 1000.0)
        })
        .collect();
    let snaps: HashMap<&str, &VehicleSnapshot> =
        vehicles.iter().map(|v| (v.id.as_str(), v)).collect();
    let (deadlines, cost) = outcomes(&commutes, &plans_by, &snaps, &window);
    Ok(DayReport {
        vehicles: vehicle_count,
        users,
        commuters: commutes.iter().filter(|c| c.plug_in.is_some()).count(),
        sim_hours,
        speed: args.speed,
        enode_latency_ms: args.enode_latency_ms,
        wall_s,
        daemon,
        simulator,
        enode,
        lateness_s,
        lateness_real_s: Percentiles::of(&real),
        lateness_unmatched: late.unmatched,
        lateness_by_edge: late.by_edge(),
        plug_in_to_plan_s: Percentiles::of(&plug_in),
        deadlines,
        cost,
        log,
        hourly,
    })
}

/// Violations the report shows one by one.
const VIOLATION_SAMPLE: usize = 12;

/// Requests and commands from two snapshots of the simulator's counters.
fn enode_numbers(before: &Stats, after: &Stats, vehicles: usize, hours: f64) -> EnodeNumbers {
    let requests = after.total_requests - before.total_requests;
    let mut by_route: Vec<(String, u64)> = after
        .requests
        .iter()
        .map(|(r, m)| (r.clone(), m.values().sum()))
        .collect();
    by_route.sort_by_key(|r| std::cmp::Reverse(r.1));
    let rate_limited = after.requests.values().filter_map(|m| m.get(&429)).sum();
    let (mut starts, mut stops, mut refused) = (0, 0, 0);
    for c in after.commands.values() {
        starts += c.start;
        stops += c.stop;
        refused += c.rejected_unplugged;
    }
    let token_calls = |s: &Stats| -> u64 {
        s.requests
            .iter()
            .filter(|(r, _)| r.contains("/oauth2/"))
            .map(|(_, m)| m.values().sum::<u64>())
            .sum()
    };
    let api = requests - (token_calls(after) - token_calls(before));
    EnodeNumbers {
        requests,
        requests_per_vehicle_day: requests as f64 / vehicles as f64 / (hours / 24.0),
        api_requests_per_vehicle_day: api as f64 / vehicles as f64 / (hours / 24.0),
        peak_per_second: 0,
        mean_per_second: 0.0,
        webhooks: false,
        by_route,
        rate_limited,
        commands: starts + stops,
        starts,
        stops,
        refused,
        violations: after.violations.total(),
        violations_by_kind: after.violations.clone(),
        violation_sample: after
            .recent_violations
            .iter()
            .take(VIOLATION_SAMPLE)
            .cloned()
            .collect(),
    }
}

/// Deadlines met and the cost of charging, over the commuters that left
/// during the run after being planned.
fn outcomes(
    commutes: &[enode_sim::Commute],
    plans: &HashMap<&str, Vec<&analysis::PlanLine>>,
    snaps: &HashMap<&str, &VehicleSnapshot>,
    window: &std::ops::RangeInclusive<DateTime<Utc>>,
) -> (Deadlines, Cost) {
    let spot = smartcharged::demo::spot_prices();
    let mut dl = Deadlines::default();
    let mut cost = Cost::default();
    for c in commutes {
        let (Some(leave), Some(snap)) = (c.departure, snaps.get(c.vehicle.as_str())) else {
            continue;
        };
        if !window.contains(&leave) {
            continue;
        }
        let Some(ps) = plans.get(c.vehicle.as_str()) else {
            continue;
        };
        // Plans for this departure: made before its deadline (5 to 10
        // minutes before it), not the replan for the next day's.
        let deadline = leave - TimeDelta::minutes(10);
        let before: Vec<&&analysis::PlanLine> =
            ps.iter().filter(|p| p.made_at < deadline).collect();
        let (Some(first), Some(last)) = (before.first(), before.last()) else {
            continue;
        };
        dl.due += 1;
        // The fleet's target is 80 %, capped by the car's own limit.
        let target = 80f64.min(snap.charge_limit);
        if snap.soc + 0.5 >= target {
            dl.met += 1;
        } else if last.feasible {
            dl.missed_feasible += 1;
            if dl.missed_sample.len() < 10 {
                dl.missed_sample.push(c.vehicle.clone());
            }
        } else {
            dl.missed_infeasible += 1;
        }
        let (after_eur, after_kwh) =
            smartcharged::demo::charged(&snap.segments, &spot, first.made_at);
        let (all_eur, all_kwh) =
            smartcharged::demo::charged(&snap.segments, &spot, DateTime::<Utc>::MIN_UTC);
        cost.vehicles += 1;
        cost.planned_eur += first.cost;
        cost.asap_eur += first.asap_cost;
        cost.planned_kwh += first.energy_kwh;
        cost.charged_eur += after_eur;
        cost.charged_kwh += after_kwh;
        cost.before_plan_eur += all_eur - after_eur;
        cost.before_plan_kwh += all_kwh - after_kwh;
    }
    cost.charged_over_planned_percent = if cost.planned_eur.abs() > 1e-9 {
        cost.charged_eur / cost.planned_eur * 100.0
    } else {
        0.0
    };
    (dl, cost)
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
