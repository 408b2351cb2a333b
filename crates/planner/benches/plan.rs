//! 48 hours of quarter-hour prices (192 slots), 40 kWh at 11 kW, `now`
//! inside a slot: planning without a block limit and with at most 3, with
//! a 30-minute shortest pause, and with the last block ending within an
//! hour of the deadline.

use chrono::TimeDelta;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use planner::Planner;

#[path = "../tests/common/mod.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let req = common::benchmark_request();
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

    // the cheapest minutes leave pauses of 15 minutes: the pause binds
    let gaps = unlimited.blocks.windows(2).map(|w| w[1].start - w[0].end);
    assert!(gaps.clone().any(|g| g < TimeDelta::minutes(30)));
    let paused = planner::PlanRequest {
        min_pause_minutes: Some(30),
        ..req.clone()
    };
    let p = planner.plan(&paused).expect("valid");
    assert!(p.feasible && p.warnings.is_empty(), "{:?}", p.warnings);
    // ... and the cheapest plan does not end within the last hour
    let deadline = req.deadline;
    assert!(unlimited.blocks.last().expect("blocks").end < deadline - TimeDelta::hours(1));
    let late = planner::PlanRequest {
        finish_by_departure_minutes: Some(60),
        ..req.clone()
    };
    let both = planner::PlanRequest {
        finish_by_departure_minutes: Some(60),
        ..paused.clone()
    };
    for r in [&late, &both] {
        let p = planner.plan(r).expect("valid");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert!(p.blocks.last().expect("blocks").end >= deadline - TimeDelta::hours(1));
    }

    c.bench_function("plan 192 slots unlimited", |b| {
        b.iter(|| planner.plan(black_box(&req)).expect("valid"))
    });
    c.bench_function("plan 192 slots max_blocks=3", |b| {
        b.iter(|| planner.plan(black_box(&limited)).expect("valid"))
    });
    c.bench_function("plan 192 slots min_pause=30", |b| {
        b.iter(|| planner.plan(black_box(&paused)).expect("valid"))
    });
    c.bench_function("plan 192 slots finish_by=60", |b| {
        b.iter(|| planner.plan(black_box(&late)).expect("valid"))
    });
    c.bench_function("plan 192 slots min_pause=30 finish_by=60", |b| {
        b.iter(|| planner.plan(black_box(&both)).expect("valid"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
