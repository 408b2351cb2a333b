//! Work per single-vehicle plan for the instances of `benches/plan.rs`
//! (192 quarter-hour slots, 40 kWh at 11 kW), one instance at a time, so
//! that instruction counts can be taken without criterion's machinery.
//!
//! `cargo run --release -p planner --example plan_cpu -- CASE REPS` plans
//! the instance CASE (`unlimited`, `max_blocks=3`, `min_pause=30`,
//! `finish_by=60` or `both`) REPS times and prints the CPU time per plan
//! and the plan's cost. Instructions per plan: run it under
//! `valgrind --tool=callgrind` with two REPS and divide the difference of
//! the totals by the difference of the REPS (the set-up cancels out).

use planner::{PlanRequest, Planner};
use std::hint::black_box;

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "unlimited".to_string());
    let reps: u32 = args.next().map_or(1000, |r| r.parse().expect("REPS"));
    let req = common::benchmark_request();
    let req = match case.as_str() {
        "unlimited" => req,
        "max_blocks=3" => PlanRequest {
            max_blocks: Some(3),
            ..req
        },
        "min_pause=30" => PlanRequest {
            min_pause_minutes: Some(30),
            ..req
        },
        "finish_by=60" => PlanRequest {
            finish_by_departure_minutes: Some(60),
            ..req
        },
        "both" => PlanRequest {
            min_pause_minutes: Some(30),
            finish_by_departure_minutes: Some(60),
            ..req
        },
        other => panic!("unknown case {other}"),
    };
    let mut planner = Planner::new();
    let c0 = cpu();
    let mut plan = None;
    for _ in 0..reps {
        plan = Some(planner.plan(black_box(&req)).expect("valid"));
    }
    let t = (cpu() - c0) * 1e6 / f64::from(reps.max(1));
    if let Some(p) = plan {
        println!(
            "{case}: {t:.2} µs CPU per plan over {reps}, cost {:.6}, {} blocks",
            p.cost,
            p.blocks.len()
        );
    }
}

/// User plus system CPU time of this process, seconds (Linux).
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
