//! CPU time per joint site plan for the instances of `benches/site.rs`
//! (2 vehicles on 11 kW, 10 and 50 at a depot, 192 quarter-hour slots,
//! without and with block rules).
//!
//! `cargo run --release -p planner --example site_cpu` prints the CPU
//! time per plan (criterion's bench measures wall time, which a shared
//! machine inflates; CPU time does not depend on what else runs).

use chrono::{TimeDelta, TimeZone, Utc};

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let prices = common::hourly("DE-LU-2023-2025.csv");
    let from = Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap();
    let slots = common::quarter_hours(&prices, from);
    for (count, rules) in [2usize, 10, 50]
        .into_iter()
        .flat_map(|c| [(c, false), (c, true)])
    {
        let req = common::bench_site(count, rules, from + TimeDelta::minutes(7), slots.clone());
        let reps = if count == 50 { 3 } else { 30 };
        let c0 = cpu();
        let mut p = None;
        for _ in 0..reps {
            p = Some(planner::plan_site(&req).unwrap());
        }
        let p = p.unwrap();
        println!(
            "{count} vehicles{}: {:.3} ms CPU per plan, exact {}, cost {:.4}, gap {:?}, {} cells, budget reached {}",
            if rules { ", rules" } else { "" },
            (cpu() - c0) * 1000.0 / reps as f64,
            p.exact,
            p.cost,
            p.gap,
            p.work_cells,
            p.warnings.iter().any(|w| w.contains("work budget"))
        );
    }
}

/// User plus system CPU time of this process, seconds (Linux).
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
