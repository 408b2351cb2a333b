//! The joint site plan on 48 hours of quarter-hour prices (192 slots):
//! 2 vehicles sharing a house connection, 10 and 50 at a depot (see
//! `common::site`: mixed 3.7 to 22 kW, spread deadlines, a binding
//! limit), each without block rules and with `max_blocks` 3 and
//! `min_pause_minutes` 30 on every vehicle. Before timing, each instance
//! prints whether its plan is proven cheapest and the gap to the lower
//! bound.

use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use planner::plan_site;

#[path = "../tests/common/mod.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let prices = common::hourly("DE-LU-2023-2025.csv");
    let from = Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap();
    let slots = common::quarter_hours(&prices, from);
    let mut group = c.benchmark_group("site 192 slots");
    for (count, rules) in [2, 10, 50]
        .into_iter()
        .flat_map(|c| [(c, false), (c, true)])
    {
        let req = common::bench_site(count, rules, from + TimeDelta::minutes(7), slots.clone());
        let name = format!("{count} vehicles{}", if rules { ", rules" } else { "" });
        let plan = plan_site(&req).expect("valid request");
        eprintln!(
            "{name}, limit {} kW: exact {}, feasible {}, cost {:.4}, lower bound {:?}, gap {:?}, peak {} kW, {} cells, budget reached {}",
            req.site_limit_kw,
            plan.exact,
            plan.feasible,
            plan.cost,
            plan.lower_bound,
            plan.gap,
            plan.peak_kw(),
            plan.work_cells,
            plan.warnings.iter().any(|w| w.contains("work budget"))
        );
        assert!(plan.peak_kw() <= req.site_limit_kw);
        group.bench_function(name, |b| b.iter(|| plan_site(black_box(&req))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
