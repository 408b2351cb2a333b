//! How far the joint site plan with block rules may be from the cheapest:
//! the benchmark's sites (`benches/site.rs`: 2 cars on 11 kW, 10 and 50 at
//! a depot, 192 quarter-hour slots, every car at most 3 blocks with
//! pauses of at least 30 minutes) started at noon on every 14th day of
//! 2024 on DE-LU, NL and SE3 prices.
//!
//! `cargo run --release -p planner --example site_gaps` prints per market
//! and site how many plans are proven cheapest, and the median and the
//! largest gap to the lower bound, per kWh charged (a share of the cost
//! says little where prices go near zero or below).

use chrono::{TimeDelta, TimeZone, Utc};

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    for (market, file) in [
        ("DE-LU", "DE-LU-2023-2025.csv"),
        ("NL", "NL-2024.csv"),
        ("SE3", "SE3-2023-2024.csv"),
    ] {
        let prices = common::hourly(file);
        for count in [2usize, 10, 50] {
            let (mut exact, mut plans, mut gaps) = (0, 0, Vec::new());
            for day in (0..358).step_by(14) {
                let from =
                    Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap() + TimeDelta::days(day);
                if !prices.contains_key(&(from + TimeDelta::hours(47))) {
                    continue;
                }
                let slots = common::quarter_hours(&prices, from);
                let req = common::bench_site(count, true, from + TimeDelta::minutes(7), slots);
                let plan = planner::plan_site(&req).expect("valid request");
                plans += 1;
                exact += usize::from(plan.exact);
                let kwh: f64 = plan.vehicles.iter().map(|v| v.energy_kwh).sum();
                if let (Some(g), true) = (plan.gap, kwh > 0.0) {
                    gaps.push(g / kwh * 100.0);
                }
            }
            if gaps.is_empty() {
                continue;
            }
            let (median, _) = common::median_mean(&mut gaps);
            let max = gaps.iter().copied().fold(0.0, f64::max);
            println!(
                "{market}, {count} cars with rules: {exact} of {plans} exact, gap median {median:.3} ct/kWh, max {max:.3} ct/kWh ({} with a bound)",
                gaps.len()
            );
        }
    }
}
