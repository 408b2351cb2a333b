//! The joint site plan on 48 hours of quarter-hour prices (192 slots):
//! 2 vehicles sharing a house connection, 10 and 50 at a depot (see
//! `common::site`: mixed 3.7 to 22 kW, spread deadlines, a binding
//! limit). Before timing, each instance prints whether its plan is proven
//! cheapest and the gap to the lower bound.

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
    for count in [2, 10, 50] {
        let mut req = common::site(count, from + TimeDelta::minutes(7), slots.clone());
        if count == 2 {
            // two cars on an 11 kW house connection: they take turns
            req.site_limit_kw = 11.0;
        }
        let plan = plan_site(&req).expect("valid request");
        eprintln!(
            "{count} vehicles, limit {} kW: exact {}, feasible {}, cost {:.4}, lower bound {:?}, gap {:?}, peak {} kW",
            req.site_limit_kw,
            plan.exact,
            plan.feasible,
            plan.cost,
            plan.lower_bound,
            plan.gap,
            plan.peak_kw()
        );
        assert!(plan.peak_kw() <= req.site_limit_kw);
        group.bench_function(format!("{count} vehicles"), |b| {
            b.iter(|| plan_site(black_box(&req)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
