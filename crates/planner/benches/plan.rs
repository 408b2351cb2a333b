//! 48 hours of quarter-hour prices (192 slots), 40 kWh at 11 kW, `now`
//! inside a slot: planning without a block limit and with at most 3.

use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use planner::Planner;

#[path = "../tests/common/mod.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let prices = common::hourly("DE-LU-2023-2025.csv");
    let from = Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap();
    let slots = common::quarter_hours(&prices, from);
    let req = common::forty_kwh(
        from + TimeDelta::minutes(7),
        from + TimeDelta::hours(48),
        slots,
    );
    let mut planner = Planner::new();
    let unlimited = planner.plan(&req).expect("valid request");
    // the cheapest minutes form more than 3 blocks: the limit is binding
    assert!(
        unlimited.blocks.len() > 3,
        "{} blocks",
        unlimited.blocks.len()
    );
    let limited = planner::PlanRequest {
        max_blocks: Some(3),
        ..req.clone()
    };
    assert!(planner.plan(&limited).expect("valid").blocks.len() <= 3);

    c.bench_function("plan 192 slots unlimited", |b| {
        b.iter(|| planner.plan(black_box(&req)).expect("valid"))
    });
    c.bench_function("plan 192 slots max_blocks=3", |b| {
        b.iter(|| planner.plan(black_box(&limited)).expect("valid"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
