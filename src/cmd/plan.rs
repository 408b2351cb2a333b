//! `smartcharged plan`: plan one request or a batch from JSON.
//!
//! `--request FILE|-` reads one request and prints a chart, or the plan as
//! JSON with `--json`. `--batch FILE.jsonl` reads one request per line and
//! prints one plan per line, with buffered I/O and reused buffers, for
//! throughput measurements and scripts.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use planner::{Plan, PlanRequest, Planner};

use super::{exit, CmdResult, Failure};

/// Arguments of `smartcharged plan`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["request", "batch"])))]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PlanArgs {
    /// `plan show VEHICLE`: the running daemon's live plan.
    #[command(subcommand)]
    pub live: Option<LivePlan>,
    /// Read one request from FILE (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// Print the plan as JSON instead of a chart.
    #[arg(long)]
    pub json: bool,
    /// Read one request per line from FILE.jsonl (`-` for standard input)
    /// and print one JSON plan per line.
    #[arg(long, value_name = "FILE.jsonl", conflicts_with_all = ["request", "json"])]
    pub batch: Option<PathBuf>,
    /// IANA time zone of the chart's times (e.g. Europe/Berlin); JSON is UTC.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub time_zone: chrono_tz::Tz,
}

/// Plans of the running daemon.
#[derive(clap::Subcommand, Debug)]
pub enum LivePlan {
    /// Chart the live plan of VEHICLE in local time, with why it is (not)
    /// charging now (from the running daemon, over its admin socket).
    Show {
        /// The vehicle.
        vehicle: String,
        #[command(flatten)]
        socket: super::admin::SocketArgs,
    },
}

/// Runs `smartcharged plan`.
pub fn run(args: PlanArgs) -> CmdResult {
    if let Some(LivePlan::Show { vehicle, socket }) = args.live {
        return super::admin::run_plan_show(&vehicle, &socket);
    }
    match (&args.request, &args.batch) {
        (_, Some(batch)) => run_batch(batch),
        (Some(request), None) => run_one(request, args.json, args.time_zone),
        (None, None) => Err(Failure::new(
            exit::DATAERR,
            anyhow::anyhow!("give --request FILE or --batch FILE.jsonl"),
        )),
    }
}

fn open(path: &Path) -> Result<Box<dyn Read>, Failure> {
    if path == Path::new("-") {
        return Ok(Box::new(io::stdin().lock()));
    }
    let file = File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))
        .map_err(|e| Failure::new(exit::DATAERR, e))?;
    Ok(Box::new(file))
}

fn run_one(path: &Path, json: bool, tz: chrono_tz::Tz) -> CmdResult {
    let mut text = String::new();
    open(path)?
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(|e| Failure::new(exit::DATAERR, e))?;
    let req = PlanRequest::from_json(&text).map_err(|e| Failure::new(exit::DATAERR, e))?;
    let plan = Planner::new()
        .plan(&req)
        .map_err(|e| Failure::new(exit::DATAERR, e))?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if json {
        serde_json::to_writer(&mut out, &plan).context("cannot write the plan")?;
        writeln!(out)?;
    } else {
        write!(
            out,
            "{}",
            chart(&req.prices, req.now, req.deadline, &plan, tz)
        )?;
    }
    out.flush()?;
    Ok(())
}

fn run_batch(path: &Path) -> CmdResult {
    let mut input = BufReader::with_capacity(1 << 16, open(path)?);
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut planner = Planner::new();
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(|e| Failure::new(exit::DATAERR, e))?;
        if read == 0 {
            break;
        }
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        let plan = PlanRequest::from_json(&line)
            .and_then(|req| planner.plan(&req))
            .with_context(|| format!("line {n}"))
            .map_err(|e| Failure::new(exit::DATAERR, e))?;
        serde_json::to_writer(&mut out, &plan).context("cannot write a plan")?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Width of the longest price bar.
const BAR: f64 = 32.0;

/// The terminal chart: one row per price slot inside the horizon, its
/// price as a bar, the minutes charged in it, then a summary. Times are
/// local times in `tz`, which the first line names (people read local
/// time; JSON and logs stay UTC).
pub(crate) fn chart(
    prices: &[planner::PriceSlot],
    now: chrono::DateTime<chrono::Utc>,
    deadline: chrono::DateTime<chrono::Utc>,
    plan: &Plan,
    tz: chrono_tz::Tz,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let fmt = "%m-%d %H:%M";
    let now = now.with_timezone(&tz);
    let deadline = deadline.with_timezone(&tz);
    let local = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz);
    let rows: Vec<_> = prices
        .iter()
        .filter(|p| p.end > now && p.start < deadline)
        .collect();
    let lo = rows.iter().map(|p| p.price_per_kwh).fold(0.0, f64::min);
    let hi = rows.iter().map(|p| p.price_per_kwh).fold(lo, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let _ = writeln!(
        s,
        "plan from {} to {} ({tz}), {} block{}",
        now.format(fmt),
        deadline.format(fmt),
        plan.blocks.len(),
        if plan.blocks.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(s, "{:<25} {:>9}", "slot", "per kWh");
    for p in &rows {
        let charged: i64 = plan
            .blocks
            .iter()
            .map(|b| {
                (b.end.min(p.end) - b.start.max(p.start))
                    .num_minutes()
                    .max(0)
            })
            .sum();
        let len = (((p.price_per_kwh - lo) / span) * BAR).round().max(1.0) as usize;
        let (fill, mark) = if charged > 0 {
            ('█', format!(" ◀ {charged} min"))
        } else {
            ('░', String::new())
        };
        let _ = writeln!(
            s,
            "{} – {} {:>9.4} {}{}",
            local(p.start).format(fmt),
            local(p.end).format("%H:%M"),
            p.price_per_kwh,
            fill.to_string().repeat(len),
            mark
        );
    }
    let _ = writeln!(s);
    for b in &plan.blocks {
        let _ = writeln!(
            s,
            "charge {} – {}  {:>6.2} kWh  {:>8.4}{}",
            local(b.start).format(fmt),
            local(b.end).format(fmt),
            b.energy_kwh,
            b.cost,
            if b.tentative {
                "  (tentative: forecast prices)"
            } else {
                ""
            }
        );
    }
    let saving = plan.saving();
    let pct = if plan.asap_cost.abs() > f64::EPSILON {
        saving / plan.asap_cost.abs() * 100.0
    } else {
        0.0
    };
    let _ = writeln!(
        s,
        "energy   {:.2} kWh in {} min",
        plan.energy_kwh, plan.charge_minutes
    );
    let _ = writeln!(s, "cost     {:.4}", plan.cost);
    let _ = writeln!(s, "at once  {:.4}", plan.asap_cost);
    let _ = writeln!(s, "saving   {saving:.4} ({pct:.1}%)");
    if !plan.feasible {
        let _ = writeln!(
            s,
            "NOT FEASIBLE: {:.2} kWh short at the deadline",
            plan.shortfall_kwh
        );
    }
    for w in &plan.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}
