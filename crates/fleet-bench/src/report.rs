//! What a benchmark run found, as JSON (`--json`) or as a table that puts
//! each number next to its target.

use std::fmt::Write as _;

use serde::Serialize;

use crate::analysis::{LogSummary, Percentiles};
use crate::procs::ThreadCpu;

/// Daemon CPU at most this share of one core (10,000 vehicles).
pub const TARGET_CORE_PERCENT: f64 = 5.0;
/// Daemon peak RSS at most this (10,000 vehicles): the target is 150 MB,
/// that is 150e6 bytes, and RSS is read in MiB (2^20 bytes).
pub const TARGET_RSS_MIB: f64 = 150e6 / (1024.0 * 1024.0);
/// Block-edge lateness p99 at most this.
pub const TARGET_P99_LATENESS_S: f64 = 2.0;
/// Spawn to READY at most this with 100,000 users.
pub const TARGET_READY_S: f64 = 2.0;

/// A simulated day (or part of one).
#[derive(Debug, Clone, Serialize)]
pub struct DayReport {
    /// Vehicles in the fleet.
    pub vehicles: usize,
    /// Users (vehicles / vehicles per user).
    pub users: usize,
    /// Vehicles that come home and plug in during the run.
    pub commuters: usize,
    /// Simulated hours measured (from READY on).
    pub sim_hours: f64,
    /// Clock speed: simulated seconds per real second.
    pub speed: f64,
    /// Simulated latency of every Enode API answer, ms of clock time.
    pub enode_latency_ms: u64,
    /// Real seconds the measured part took.
    pub wall_s: f64,
    /// The daemon process.
    pub daemon: DaemonNumbers,
    /// The simulator process (context: it shares the two cores).
    pub simulator: SimNumbers,
    /// Enode traffic as the simulator counted it.
    pub enode: EnodeNumbers,
    /// Block-edge lateness, simulated seconds.
    pub lateness_s: Percentiles,
    /// The same in real seconds (simulated / speed): the daemon's own delay.
    pub lateness_real_s: Percentiles,
    /// Commands the plan in force did not ask for.
    pub lateness_unmatched: usize,
    /// Lateness at crowded edges and elsewhere.
    pub lateness_by_edge: crate::analysis::EdgeSplit,
    /// Plug-in to first plan, simulated seconds (the poll interval of an
    /// unplugged vehicle bounds it).
    pub plug_in_to_plan_s: Percentiles,
    /// Deadlines (departures) during the run.
    pub deadlines: Deadlines,
    /// Cost of what was charged versus the plans.
    pub cost: Cost,
    /// What the daemon logged.
    pub log: LogSummary,
    /// Per simulated hour: daemon CPU seconds and RSS.
    pub hourly: Vec<Hour>,
}

/// CPU and memory of the daemon.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DaemonNumbers {
    /// Spawn to READY, real seconds.
    pub ready_s: f64,
    /// CPU seconds until READY.
    pub cpu_to_ready_s: f64,
    /// CPU seconds from READY to the end.
    pub cpu_s: f64,
    /// `cpu_s` per simulated hour.
    pub cpu_s_per_sim_hour: f64,
    /// What that is as a share of one core at real speed (per hour of real
    /// time, as in production): cpu_s_per_sim_hour / 3600 * 100.
    pub core_percent_at_real_time: f64,
    /// Resident memory at READY, MiB.
    pub rss_at_ready_mib: f64,
    /// Peak resident memory (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// CPU seconds by thread name, since spawn.
    pub threads: Vec<ThreadCpu>,
}

/// CPU and memory of the simulator.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimNumbers {
    /// CPU seconds during the measured part.
    pub cpu_s: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
}

/// Enode requests and commands.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnodeNumbers {
    /// Requests during the measured part.
    pub requests: u64,
    /// Per vehicle and simulated day.
    pub requests_per_vehicle_day: f64,
    /// The same without the token endpoint: the API requests vendors
    /// ration.
    pub api_requests_per_vehicle_day: f64,
    /// The most requests in one simulated second.
    pub peak_per_second: u32,
    /// Requests per simulated second on average.
    pub mean_per_second: f64,
    /// Whether the simulator pushed webhooks.
    pub webhooks: bool,
    /// The busiest routes (during the whole run, including start-up).
    pub by_route: Vec<(String, u64)>,
    /// Answers with status 429 (none are injected: the simulator's own).
    pub rate_limited: u64,
    /// Accepted commands.
    pub commands: u64,
    /// Accepted START commands.
    pub starts: u64,
    /// Accepted STOP commands.
    pub stops: u64,
    /// Commands refused (vehicle not plugged in).
    pub refused: u64,
    /// Violations of the simulator's rules (expired tokens, replays, ...),
    /// whole run.
    pub violations: u64,
    /// The same by kind.
    pub violations_by_kind: enode_sim::Violations,
    /// A few violations, for a closer look: the oldest of the latest 256
    /// the simulator keeps (whole run, like the counters).
    pub violation_sample: Vec<enode_sim::ViolationEvent>,
}

/// Departures during the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deadlines {
    /// Vehicles that left during the run after being planned.
    pub due: usize,
    /// Left with at least the target (80 % or their limit).
    pub met: usize,
    /// Missed although the last plan said it was feasible.
    pub missed_feasible: usize,
    /// Missed with a plan that said it could not be done in time.
    pub missed_infeasible: usize,
    /// Up to 10 of the vehicles in `missed_feasible`, to look into.
    pub missed_sample: Vec<String>,
}

/// Costs in EUR at the day-ahead spot price (the config's tariff).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cost {
    /// Vehicles with a plan.
    pub vehicles: usize,
    /// Sum of each vehicle's first plan of the session (the optimum at
    /// plug-in).
    pub planned_eur: f64,
    /// What the simulator charged from that plan on.
    pub charged_eur: f64,
    /// charged / planned * 100.
    pub charged_over_planned_percent: f64,
    /// Charging as much at once, from the plans.
    pub asap_eur: f64,
    /// Energy the first plans planned, kWh.
    pub planned_kwh: f64,
    /// Energy charged from then on, kWh.
    pub charged_kwh: f64,
    /// Energy charged before the first plan (cars that start by
    /// themselves on plug-in), kWh, and its cost.
    pub before_plan_kwh: f64,
    /// Cost of `before_plan_kwh`.
    pub before_plan_eur: f64,
}

/// One simulated hour.
#[derive(Debug, Clone, Serialize)]
pub struct Hour {
    /// Hour start, UTC.
    pub at: String,
    /// Daemon CPU seconds in the hour.
    pub cpu_s: f64,
    /// Daemon RSS at its end, MiB.
    pub rss_mib: f64,
    /// Enode requests in the hour.
    pub requests: u64,
}

/// The start-up measurement.
#[derive(Debug, Clone, Serialize)]
pub struct StartupReport {
    /// Linked users in the store.
    pub users: usize,
    /// Seeding the store took (real seconds; not part of the measurement).
    pub seed_s: f64,
    /// Store size on disk, MiB.
    pub store_mib: f64,
    /// Spawn to READY=1, real seconds.
    pub ready_s: f64,
    /// CPU seconds until READY.
    pub cpu_to_ready_s: f64,
    /// RSS at READY, MiB.
    pub rss_at_ready_mib: f64,
    /// Spawn to every user loaded and its loop spawned (the daemon loads
    /// them behind READY), real seconds.
    pub loaded_s: f64,
    /// CPU seconds until then.
    pub cpu_to_loaded_s: f64,
    /// RSS then, MiB.
    pub rss_at_loaded_mib: f64,
    /// Peak RSS until then (VmHWM), MiB.
    pub peak_rss_at_loaded_mib: f64,
    /// CPU seconds by thread name once the users are loaded.
    pub threads: Vec<ThreadCpu>,
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

impl DayReport {
    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let d = &self.daemon;
        let _ = writeln!(
            o,
            "fleet-bench: {} vehicles ({} users, {} commuting), {:.1} simulated h at {}x in {:.0} s, Enode latency {} ms",
            self.vehicles, self.users, self.commuters, self.sim_hours, self.speed, self.wall_s, self.enode_latency_ms
        );
        let _ = writeln!(o, "\n{:<44} {:>14}  {:<18}", "metric", "value", "target");
        let row = |o: &mut String, k: &str, v: String, t: String| {
            let _ = writeln!(o, "{k:<44} {v:>14}  {t}");
        };
        let scaled = self.vehicles >= 10_000;
        let target = |ok: bool, t: &str| {
            if scaled {
                format!("{t} {}", mark(ok))
            } else {
                format!("({t} at 10k)")
            }
        };
        row(
            &mut o,
            "daemon CPU s per simulated hour",
            format!("{:.1}", d.cpu_s_per_sim_hour),
            String::new(),
        );
        row(
            &mut o,
            "  = % of one core in real time",
            format!("{:.2} %", d.core_percent_at_real_time),
            target(d.core_percent_at_real_time <= TARGET_CORE_PERCENT, "<= 5 %"),
        );
        row(
            &mut o,
            "daemon peak RSS (VmHWM)",
            format!("{:.1} MiB", d.peak_rss_mib),
            target(d.peak_rss_mib <= TARGET_RSS_MIB, "<= 150 MB (143.1 MiB)"),
        );
        row(
            &mut o,
            "daemon RSS at READY",
            format!("{:.1} MiB", d.rss_at_ready_mib),
            String::new(),
        );
        row(
            &mut o,
            "daemon spawn to READY",
            format!("{:.2} s", d.ready_s),
            String::new(),
        );
        row(
            &mut o,
            "Enode requests per vehicle-day",
            format!("{:.0}", self.enode.requests_per_vehicle_day),
            String::new(),
        );
        let budget = if self.enode.webhooks { 20.0 } else { 60.0 };
        row(
            &mut o,
            if self.enode.webhooks {
                "  API requests (no token calls), webhooks on"
            } else {
                "  API requests (no token calls), webhooks off"
            },
            format!("{:.1}", self.enode.api_requests_per_vehicle_day),
            format!(
                "<= {budget:.0} {}",
                if self.enode.api_requests_per_vehicle_day <= budget {
                    "ok"
                } else {
                    "MISSED"
                }
            ),
        );
        row(
            &mut o,
            "requests per sim second peak / mean",
            format!(
                "{} / {:.2}",
                self.enode.peak_per_second, self.enode.mean_per_second
            ),
            String::new(),
        );
        row(
            &mut o,
            "commands (START / STOP / refused)",
            format!(
                "{} / {} / {}",
                self.enode.starts, self.enode.stops, self.enode.refused
            ),
            String::new(),
        );
        let l = &self.lateness_s;
        row(
            &mut o,
            "block-edge lateness p50 / p99 / max (sim s)",
            format!("{:.2} / {:.2} / {:.2}", l.p50, l.p99, l.max),
            format!("p99 <= 2 s {}", mark(l.p99 <= TARGET_P99_LATENESS_S)),
        );
        let r = &self.lateness_real_s;
        row(
            &mut o,
            "  the same in real s (sim s / speed)",
            format!("{:.3} / {:.3} / {:.3}", r.p50, r.p99, r.max),
            String::new(),
        );
        row(
            &mut o,
            "  commands matched / unmatched",
            format!("{} / {}", l.n, self.lateness_unmatched),
            String::new(),
        );
        let e = &self.lateness_by_edge;
        row(
            &mut o,
            "  largest edge / edges of >= 100 commands",
            format!("{} / {}", e.largest_edge, e.crowded_edges),
            String::new(),
        );
        row(
            &mut o,
            "  at those edges p50 / p99 / max (sim s)",
            format!(
                "{:.2} / {:.2} / {:.2}",
                e.crowded.p50, e.crowded.p99, e.crowded.max
            ),
            format!("{} commands", e.crowded.n),
        );
        row(
            &mut o,
            "  at the others p50 / p99 / max (sim s)",
            format!(
                "{:.2} / {:.2} / {:.2}",
                e.other.p50, e.other.p99, e.other.max
            ),
            format!("{} commands", e.other.n),
        );
        let p = &self.plug_in_to_plan_s;
        row(
            &mut o,
            "plug-in to first plan p50 / p99 / max (s)",
            format!("{:.0} / {:.0} / {:.0}", p.p50, p.p99, p.max),
            String::new(),
        );
        let dl = &self.deadlines;
        row(
            &mut o,
            "deadlines met / due",
            format!("{} / {}", dl.met, dl.due),
            format!(
                "missed: {} feasible, {} infeasible",
                dl.missed_feasible, dl.missed_infeasible
            ),
        );
        let c = &self.cost;
        row(
            &mut o,
            "cost charged vs sum of first plans (EUR)",
            format!("{:.2} / {:.2}", c.charged_eur, c.planned_eur),
            format!("{:+.2} %", c.charged_over_planned_percent - 100.0),
        );
        row(
            &mut o,
            "  kWh charged vs planned",
            format!("{:.0} / {:.0}", c.charged_kwh, c.planned_kwh),
            format!("at once: {:.2} EUR", c.asap_eur),
        );
        row(
            &mut o,
            "  charged before the first plan",
            format!("{:.0} kWh", c.before_plan_kwh),
            format!("{:.2} EUR", c.before_plan_eur),
        );
        row(
            &mut o,
            "simulator CPU s / peak RSS",
            format!(
                "{:.0} / {:.0} MiB",
                self.simulator.cpu_s, self.simulator.peak_rss_mib
            ),
            String::new(),
        );
        row(
            &mut o,
            "simulator rule violations / 429s",
            format!("{} / {}", self.enode.violations, self.enode.rate_limited),
            String::new(),
        );
        row(
            &mut o,
            "daemon log warnings / errors",
            format!("{} / {}", self.log.warnings, self.log.errors),
            String::new(),
        );
        if self.enode.violations > 0 {
            let _ = writeln!(o, "\nsimulator rule violations by kind:");
            for (kind, n) in violation_kinds(&self.enode.violations_by_kind) {
                if n > 0 {
                    let _ = writeln!(o, "  {n:>10}  {kind}");
                }
            }
            let _ = writeln!(o, "  e.g.:");
            for v in &self.enode.violation_sample {
                let _ = writeln!(
                    o,
                    "    {}  {:?}  user {}  {}",
                    v.at.format("%m-%d %H:%M:%S%.3f"),
                    v.kind,
                    v.user.as_deref().unwrap_or("-"),
                    v.detail
                );
            }
        }
        if !dl.missed_sample.is_empty() {
            let _ = writeln!(
                o,
                "\nmissed with a feasible plan, e.g.: {}",
                dl.missed_sample.join(", ")
            );
        }
        let _ = writeln!(o, "\nEnode requests by route (whole run):");
        for (route, n) in &self.enode.by_route {
            let _ = writeln!(o, "  {n:>10}  {route}");
        }
        let _ = writeln!(o, "\ndaemon CPU by thread (since spawn):");
        for t in self.daemon.threads.iter().take(8) {
            let _ = writeln!(o, "  {:>8.1} s  {} (x{})", t.cpu_s, t.name, t.threads);
        }
        if !self.log.top_problems.is_empty() {
            let _ = writeln!(o, "\nmost frequent warnings:");
            for (m, n) in &self.log.top_problems {
                let _ = writeln!(o, "  {n:>8}  {m}");
            }
        }
        let _ = writeln!(
            o,
            "\nper simulated hour (UTC): daemon CPU s, RSS MiB, Enode requests"
        );
        for h in &self.hourly {
            let _ = writeln!(
                o,
                "  {}  {:>7.1}  {:>7.1}  {:>8}",
                h.at, h.cpu_s, h.rss_mib, h.requests
            );
        }
        o
    }
}

/// Every violation counter with its name, in the simulator's order.
pub fn violation_kinds(v: &enode_sim::Violations) -> [(&'static str, u64); 8] {
    [
        ("expired token", v.expired_token),
        ("unknown token", v.unknown_token),
        ("revoked token", v.revoked_token),
        ("request before Retry-After", v.retry_after_ignored),
        ("refresh token replayed", v.refresh_replay),
        ("invalid_grant", v.invalid_grant),
        ("command to an unplugged vehicle", v.command_unplugged),
        ("command away from home", v.command_away),
    ]
}

impl StartupReport {
    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "fleet-bench start-up: {} linked users (store {:.0} MiB, seeded in {:.1} s)",
            self.users, self.store_mib, self.seed_s
        );
        let _ = writeln!(o, "\n{:<32} {:>12}  target", "metric", "value");
        let _ = writeln!(
            o,
            "{:<32} {:>12}  <= 2 s {}",
            "spawn to READY=1",
            format!("{:.2} s", self.ready_s),
            mark(self.ready_s <= TARGET_READY_S)
        );
        let _ = writeln!(
            o,
            "{:<32} {:>12}",
            "CPU until READY",
            format!("{:.2} s", self.cpu_to_ready_s)
        );
        let _ = writeln!(
            o,
            "{:<32} {:>12}",
            "RSS at READY",
            format!("{:.1} MiB", self.rss_at_ready_mib)
        );
        let _ = writeln!(
            o,
            "{:<32} {:>12}",
            "spawn to every user loaded",
            format!("{:.2} s", self.loaded_s)
        );
        let _ = writeln!(
            o,
            "{:<32} {:>12}",
            "CPU until loaded",
            format!("{:.2} s", self.cpu_to_loaded_s)
        );
        let _ = writeln!(
            o,
            "{:<32} {:>12}",
            "RSS when loaded",
            format!("{:.1} MiB", self.rss_at_loaded_mib)
        );
        let _ = writeln!(
            o,
            "{:<32} {:>12}",
            "peak RSS until loaded",
            format!("{:.1} MiB", self.peak_rss_at_loaded_mib)
        );
        let _ = writeln!(o, "\ndaemon CPU by thread once loaded:");
        for t in self.threads.iter().take(8) {
            let _ = writeln!(o, "  {:>8.2} s  {} (x{})", t.cpu_s, t.name, t.threads);
        }
        o
    }
}
