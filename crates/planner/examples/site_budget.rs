//! Wall and CPU time of the joint site plans that the work budget
//! bounds: the depots of the hostile review of issue 12 (64 vehicles,
//! block rules down to one-minute blocks and pauses, 48 hours and 7 days
//! of quarter-hour prices), then any site request given as a JSON file.
//!
//! `cargo run --release -p planner --example site_budget [-- --unlimited] [--case=TEXT] [FILE...]`
//! plans each within [`planner::SITE_WORK_BUDGET`] (with `--unlimited`,
//! without a budget: what the budget cuts off) and prints the time, the
//! cost, the lower bound and the gap.

use chrono::{TimeDelta, TimeZone, Utc};
use planner::{SiteRequest, SITE_WORK_BUDGET};

#[path = "../tests/common/mod.rs"]
mod common;

// a timing tool: it measures real time, which is what the budget bounds
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let unlimited = args.iter().any(|a| a == "--unlimited");
    let files: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let work = if unlimited {
        u64::MAX
    } else {
        SITE_WORK_BUDGET
    };
    let mut cases: Vec<(String, SiteRequest)> = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("read {f}: {e}"));
        cases.push((
            f.to_string(),
            SiteRequest::from_json(&text).expect("a site request"),
        ));
    }
    if files.is_empty() {
        let prices = common::hourly("DE-LU-2023-2025.csv");
        let from = Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap();
        let now = from + TimeDelta::minutes(7);
        let day2 = common::quarter_hours(&prices, from);
        let week = common::quarter_hours_for(&prices, from, 672);
        // the prices end 48 hours (7 days) after `from`
        let span2 = (now, TimeDelta::minutes(48 * 60 - 7));
        let span7 = (now, TimeDelta::minutes(7 * 1440 - 7));
        // 2, 10 and 50 cars: a limit of 40% of their summed power
        for count in [2, 10, 50] {
            let sum: f64 = (0..count).map(|i| common::SITE_POWERS[i % 4]).sum();
            let limit = (0.4 * sum).max(22.0).min(sum).round();
            for rules in [(3, 1, 30), (16, 1, 1)] {
                let req = common::rules_depot(count, span2, day2.clone(), 60.0, limit, rules);
                cases.push((
                    format!("{count} cars 48 h {rules:?} 60 kWh, {limit} kW"),
                    req,
                ));
            }
        }
        // the test's depot (tests/site.rs), then the hostile review's
        let req = common::rules_depot(64, span2, day2.clone(), 30.0, 100.0, (16, 1, 1));
        cases.push(("64 cars 48 h (16, 1, 1) 30 kWh, 100 kW".to_string(), req));
        for rules in [(16, 1, 1), (2, 60, 60), (3, 1, 30)] {
            let req = common::rules_depot(64, span2, day2.clone(), 100.0, 150.0, rules);
            cases.push((format!("64 cars 48 h {rules:?} 100 kWh, 150 kW"), req));
        }
        let req = common::rules_depot(64, span7, week, 1000.0, 300.0, (16, 1, 1));
        let mut free = req.clone();
        for v in &mut free.vehicles {
            (v.max_blocks, v.min_block_minutes, v.min_pause_minutes) = (None, None, None);
        }
        cases.push(("64 cars 7 d (16, 1, 1) 1000 kWh, 300 kW".to_string(), req));
        cases.push(("64 cars 7 d no rules 1000 kWh, 300 kW".to_string(), free));
    }
    // `--case=TEXT`: only the built-in cases whose name holds TEXT
    let only = args.iter().find_map(|a| a.strip_prefix("--case="));
    for (name, req) in cases
        .iter()
        .filter(|c| only.is_none_or(|o| c.0.contains(o)))
    {
        let (w0, c0) = (std::time::Instant::now(), cpu());
        let plan = planner::plan_site_within(req, work).expect("a valid request");
        let (wall, cpu) = (w0.elapsed().as_secs_f64(), cpu() - c0);
        let short = plan.vehicles.iter().filter(|v| !v.feasible).count();
        let budget = plan.warnings.iter().any(|w| w.contains("work budget"));
        println!(
            "{name}: {wall:.2} s wall, {cpu:.2} s CPU, {} cells; exact {}, budget reached {budget}, cost {:.2}, lower bound {:.2}, gap {:.2}, {short} of {} short",
            plan.work_cells,
            plan.exact,
            plan.cost,
            plan.lower_bound.unwrap_or(f64::NAN),
            plan.gap.unwrap_or(f64::NAN),
            plan.vehicles.len()
        );
    }
}

/// User plus system CPU time of this process, seconds (Linux).
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
