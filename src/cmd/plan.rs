//! `smartcharged plan`: plan one request or a batch from JSON.
//!
//! `--request FILE|-` reads one request and prints a chart, or the plan as
//! JSON with `--json`. `--batch FILE.jsonl` reads one request per line and
//! prints one plan per line, with buffered I/O and reused buffers, for
//! throughput measurements and scripts. `--site` (or a request with a
//! `vehicles` array) plans vehicles sharing one connection jointly under
//! `site_limit_kw`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use planner::{plan_site, Plan, PlanRequest, Planner, SitePlan, SiteRequest};

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
    /// Read a site request (shared prices and limit, several vehicles) and
    /// plan its vehicles jointly; a request with `vehicles` is read as one
    /// without the flag too.
    #[arg(long, requires = "request")]
    pub site: bool,
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
        (Some(request), None) => run_one(request, args.site, args.json, args.time_zone),
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

/// The largest request file read, bytes: a week of minute prices for a
/// full site is far below it.
pub const MAX_REQUEST_BYTES: u64 = 16 << 20;

fn run_one(path: &Path, site: bool, json: bool, tz: chrono_tz::Tz) -> CmdResult {
    let mut text = String::new();
    open(path)?
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(|e| Failure::new(exit::DATAERR, e))?;
    if text.len() as u64 > MAX_REQUEST_BYTES {
        return Err(Failure::new(
            exit::DATAERR,
            anyhow::anyhow!(
                "{} is larger than {MAX_REQUEST_BYTES} bytes",
                path.display()
            ),
        ));
    }
    if site || has_vehicles(&text) {
        return run_site(&text, json, tz);
    }
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

/// Whether `text` is a JSON object with a `vehicles` key: a site request.
fn has_vehicles(text: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
        .is_ok_and(|m| m.contains_key("vehicles"))
}

fn run_site(text: &str, json: bool, tz: chrono_tz::Tz) -> CmdResult {
    let req = SiteRequest::from_json(text).map_err(|e| Failure::new(exit::DATAERR, e))?;
    let plan = plan_site(&req).map_err(|e| Failure::new(exit::DATAERR, e))?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if json {
        serde_json::to_writer(&mut out, &plan).context("cannot write the plan")?;
        writeln!(out)?;
    } else {
        write!(out, "{}", site_chart(&req, &plan, tz))?;
    }
    out.flush()?;
    Ok(())
}

/// Columns of the site chart's timeline.
const COLUMNS: i64 = 64;

/// The site chart: one row per vehicle over the horizon (█ charging),
/// the summed load as a row of eighths of the limit, then each vehicle's
/// blocks and the totals. Times are local in `tz`.
pub(crate) fn site_chart(req: &SiteRequest, plan: &SitePlan, tz: chrono_tz::Tz) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let fmt = "%m-%d %H:%M";
    let local = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz);
    let start = req.now;
    let end = req
        .vehicles
        .iter()
        .map(|v| v.deadline)
        .max()
        .unwrap_or(start);
    let span = (end - start).num_seconds().max(1);
    let col = |c: i64| start + chrono::TimeDelta::seconds(span * c / COLUMNS);
    let _ = writeln!(
        s,
        "site plan from {} to {} ({tz}), limit {} kW, {} vehicles, one column = {} min",
        local(start).format(fmt),
        local(end).format(fmt),
        req.site_limit_kw,
        req.vehicles.len(),
        span / COLUMNS / 60
    );
    let width = req
        .vehicles
        .iter()
        .map(|v| v.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    for (v, p) in req.vehicles.iter().zip(&plan.vehicles) {
        let row: String = (0..COLUMNS)
            .map(|c| {
                let (a, b) = (col(c), col(c + 1));
                if a >= v.deadline {
                    ' '
                } else if p.blocks.iter().any(|k| k.start < b && a < k.end) {
                    '█'
                } else {
                    '·'
                }
            })
            .collect();
        let _ = writeln!(s, "{:<width$} |{row}| {} kW", v.id, v.max_power_kw);
    }
    // the highest load in each column, in eighths of the limit
    const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let load: String = (0..COLUMNS)
        .map(|c| {
            let (a, b) = (col(c), col(c + 1));
            let kw = plan
                .load
                .iter()
                .filter(|l| l.start < b && a < l.end)
                .map(|l| l.kw)
                .fold(0.0, f64::max);
            let level = (kw / req.site_limit_kw * 8.0).ceil().clamp(0.0, 8.0) as usize;
            LEVELS[level]
        })
        .collect();
    let _ = writeln!(
        s,
        "{:<width$} |{load}| peak {} of {} kW",
        "load",
        plan.peak_kw(),
        req.site_limit_kw
    );
    let _ = writeln!(s);
    for p in &plan.vehicles {
        for b in &p.blocks {
            let _ = writeln!(
                s,
                "{:<width$} charge {} – {}  {:>6.2} kWh  {:>8.4}{}",
                p.id,
                local(b.start).format(fmt),
                local(b.end).format(fmt),
                b.energy_kwh,
                b.cost,
                if b.tentative { "  (tentative)" } else { "" }
            );
        }
        if !p.feasible {
            let _ = writeln!(
                s,
                "{:<width$} NOT FEASIBLE: {} short at its deadline",
                p.id,
                planner::kwh_short(p.shortfall_kwh)
            );
        }
        for w in &p.warnings {
            let _ = writeln!(s, "{:<width$} warning: {w}", p.id);
        }
    }
    let _ = writeln!(s, "cost     {:.4}", plan.cost);
    let _ = writeln!(s, "{}", bound_line(plan.exact, plan.lower_bound, plan.cost));
    for w in &plan.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

/// The site chart's line on how far the plan may be from the cheapest.
/// A gap of 0 without `exact` loses nothing on the plan's own terms (no
/// plan serving the same energy costs less), so it is not printed as a
/// gap; one below what four decimals show reads "less than 0.0001"
/// rather than a gap of 0.0000.
fn bound_line(exact: bool, lower_bound: Option<f64>, cost: f64) -> String {
    match (exact, lower_bound) {
        (true, _) => "exact    the cheapest joint plan".to_string(),
        (false, Some(lb)) => {
            let gap = (cost - lb).max(0.0);
            if gap == 0.0 {
                // the warnings say what is not proven
                format!("bound    {lb:.4} (gap 0): none serving the same energy costs less, but not proven the cheapest")
            } else if gap < 0.00005 {
                format!("bound    {lb:.4} (gap less than 0.0001): not proven the cheapest")
            } else {
                format!("bound    {lb:.4} (gap {gap:.4}): not proven the cheapest")
            }
        }
        (false, None) => "bound    none on the same energy: not proven the cheapest".to_string(),
    }
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
            "NOT FEASIBLE: {} short at the deadline",
            planner::kwh_short(plan.shortfall_kwh)
        );
    }
    for w in &plan.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::bound_line;

    #[test]
    fn a_gap_of_zero_is_not_printed_as_a_loss() {
        assert_eq!(
            bound_line(true, Some(2.5), 2.5),
            "exact    the cheapest joint plan"
        );
        let zero = bound_line(false, Some(2.5), 2.5);
        assert!(
            zero.contains("(gap 0): none serving the same energy costs less"),
            "{zero}"
        );
        let tiny = bound_line(false, Some(2.5), 2.500_01);
        assert!(tiny.contains("(gap less than 0.0001)"), "{tiny}");
        assert!(!tiny.contains("0.0000"), "{tiny}");
        let some = bound_line(false, Some(2.5), 2.75);
        assert!(
            some.contains("(gap 0.2500): not proven the cheapest"),
            "{some}"
        );
        assert!(bound_line(false, None, 2.5).contains("none on the same energy"));
    }
}
