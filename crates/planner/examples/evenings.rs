//! A year of evenings on real prices: plug in at 18:00, leave at 07:00,
//! 40 kWh at 11 kW.
//!
//! `cargo run --release -p planner --example evenings` prints the saving
//! against charging at once (median and mean) for DE-LU 2024 and SE3 2023.
//! `... --example evenings -- jsonl N` prints N requests as JSON lines
//! (the year's evenings over and over, with and without a block limit),
//! input for `smartcharged plan --batch`; `-- quarter N` prints N requests
//! with 48 hours of quarter-hour prices (192 slots, as in the benchmark),
//! a day apart, every other one with at most 3 blocks.

use std::io::{self, BufWriter, Write};

use chrono_tz::Europe::{Berlin, Stockholm};
use planner::{PlanRequest, Planner};

#[path = "../tests/common/mod.rs"]
mod common;

fn years() -> Vec<(&'static str, Vec<PlanRequest>)> {
    vec![
        (
            "DE-LU 2024",
            common::evenings(&common::hourly("DE-LU-2023-2025.csv"), Berlin, 2024),
        ),
        (
            "SE3 2023",
            common::evenings(&common::hourly("SE3-2023-2024.csv"), Stockholm, 2023),
        ),
    ]
}

fn savings() {
    let mut planner = Planner::new();
    println!("zone        evenings  saving per evening (EUR)     saving (% of at once)");
    println!("                      median    mean                median  mean   total");
    for (name, requests) in years() {
        let (mut eur, mut pct) = (Vec::new(), Vec::new());
        let (mut cost, mut asap) = (0.0, 0.0);
        for req in &requests {
            let p = planner.plan(req).expect("valid request");
            eur.push(p.saving());
            if p.asap_cost > 0.0 {
                pct.push(p.saving() / p.asap_cost * 100.0);
            }
            cost += p.cost;
            asap += p.asap_cost;
        }
        let (em, ea) = common::median_mean(&mut eur);
        let (pm, pa) = common::median_mean(&mut pct);
        println!(
            "{name:<11} {:>8}  {em:>6.3}  {ea:>6.3}              {pm:>5.1}  {pa:>5.1}  {:>5.1}",
            requests.len(),
            (asap - cost) / asap * 100.0
        );
    }
}

fn jsonl(n: usize) -> io::Result<()> {
    let all: Vec<PlanRequest> = years().into_iter().flat_map(|(_, r)| r).collect();
    let mut out = BufWriter::new(io::stdout().lock());
    for i in 0..n {
        let mut req = all[i % all.len()].clone();
        if (i / all.len()) % 2 == 1 {
            req.max_blocks = Some(3);
        }
        serde_json::to_writer(&mut out, &req)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn quarter(n: usize) -> io::Result<()> {
    use chrono::{TimeDelta, TimeZone, Utc};
    let prices = common::hourly("DE-LU-2023-2025.csv");
    let first = Utc.with_ymd_and_hms(2023, 2, 1, 12, 0, 0).unwrap();
    let mut out = BufWriter::new(io::stdout().lock());
    for i in 0..n {
        let from = first + TimeDelta::days((i % 700) as i64);
        let slots = common::quarter_hours(&prices, from);
        let mut req = common::forty_kwh(
            from + TimeDelta::minutes(7),
            from + TimeDelta::hours(48),
            slots,
        );
        if i % 2 == 1 {
            req.max_blocks = Some(3);
        }
        serde_json::to_writer(&mut out, &req)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("jsonl") => jsonl(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(10_000)),
        Some("quarter") => quarter(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(10_000)),
        _ => {
            savings();
            Ok(())
        }
    }
}
