use chrono::{TimeDelta, TimeZone, Utc};
#[path = "../tests/common/mod.rs"]
mod common;
fn main() {
    let prices = common::hourly("DE-LU-2023-2025.csv");
    let from = Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap();
    let mut req = common::forty_kwh(from + TimeDelta::minutes(7), from + TimeDelta::hours(48), common::quarter_hours(&prices, from));
    let k: u32 = std::env::args().nth(2).unwrap().parse().unwrap();
    if k > 0 { req.max_blocks = Some(k); }
    let mut p = planner::Planner::new();
    let n: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let mut acc = 0.0;
    for _ in 0..n { acc += p.plan(&req).unwrap().cost; }
    println!("{acc}");
}
