//! Real day-ahead prices from the repository's test data, shared by the
//! planner's tests, examples and benchmark.

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use planner::{PlanRequest, PriceSlot, TieBreak};

/// Hourly prices in EUR/kWh by UTC hour start, from
/// `tests/data/prices/<name>` of the workspace.
pub fn hourly(name: &str) -> BTreeMap<DateTime<Utc>, f64> {
    let path = format!(
        "{}/../../tests/data/prices/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (t, p) = l.split_once(',').expect("two columns");
            let t: DateTime<Utc> = t.parse().expect("utc time");
            let p: f64 = p.parse().expect("price");
            (t, p / 1000.0)
        })
        .collect()
}

/// Hourly slots covering `[from, to)`.
pub fn slots(
    prices: &BTreeMap<DateTime<Utc>, f64>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<PriceSlot> {
    prices
        .range(from..to)
        .map(|(&t, &p)| PriceSlot {
            start: t,
            end: t + TimeDelta::hours(1),
            price_per_kwh: p,
        })
        .collect()
}

/// 192 quarter-hour slots (48 hours) from `from`: each hour's price with
/// a small within-hour zigzag (as quarter-hour auctions show), so no two
/// neighbouring slots are equal and the cheapest minutes scatter.
pub fn quarter_hours(prices: &BTreeMap<DateTime<Utc>, f64>, from: DateTime<Utc>) -> Vec<PriceSlot> {
    quarter_hours_for(prices, from, 192)
}

/// `count` quarter-hour slots from `from`, as [`quarter_hours`].
pub fn quarter_hours_for(
    prices: &BTreeMap<DateTime<Utc>, f64>,
    from: DateTime<Utc>,
    count: i64,
) -> Vec<PriceSlot> {
    (0..count)
        .map(|q| {
            let start = from + TimeDelta::minutes(15 * q);
            let hour = from + TimeDelta::hours(q / 4);
            let ramp = [0.003, -0.002, 0.001, -0.003][(q % 4) as usize];
            PriceSlot {
                start,
                end: start + TimeDelta::minutes(15),
                price_per_kwh: prices[&hour] + ramp,
            }
        })
        .collect()
}

/// The benchmark's prices: 48 hours of DE-LU quarter-hour slots (192)
/// from noon UTC on Monday 2024-03-04, with that noon.
pub fn benchmark_slots() -> (DateTime<Utc>, Vec<PriceSlot>) {
    let prices = hourly("DE-LU-2023-2025.csv");
    let from = Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap();
    (from, quarter_hours(&prices, from))
}

/// The single-vehicle benchmark's request: [`forty_kwh`] over
/// [`benchmark_slots`], `now` 7 minutes into the first slot, the deadline
/// 48 hours after its start.
pub fn benchmark_request() -> PlanRequest {
    let (from, slots) = benchmark_slots();
    forty_kwh(
        from + TimeDelta::minutes(7),
        from + TimeDelta::hours(48),
        slots,
    )
}

/// A request for 40 kWh at 11 kW (219 minutes) from a 100 kWh battery.
pub fn forty_kwh(
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    prices: Vec<PriceSlot>,
) -> PlanRequest {
    PlanRequest {
        now,
        deadline,
        battery_kwh: 100.0,
        soc_percent: 20.0,
        target_percent: 60.0,
        max_power_kw: 11.0,
        efficiency: 1.0,
        min_soc_percent: 0.0,
        max_blocks: None,
        min_block_minutes: None,
        charge_limit_percent: None,
        opportunistic_price: None,
        tie_break: TieBreak::Later,
        charging_now: false,
        min_pause_minutes: None,
        finish_by_departure_minutes: None,
        prices,
    }
}

/// Every evening of `year` in `tz`: plug in at 18:00 local time, deadline
/// 07:00 local the next morning, 40 kWh at 11 kW, with the hourly prices of
/// the night (DST nights have 12 or 14 hours).
pub fn evenings(
    prices: &BTreeMap<DateTime<Utc>, f64>,
    tz: chrono_tz::Tz,
    year: i32,
) -> Vec<PlanRequest> {
    use chrono::{Datelike, NaiveDate, TimeZone};
    let mut out = Vec::new();
    let mut day = NaiveDate::from_ymd_opt(year, 1, 1).expect("date");
    while day.year() == year {
        let local = |d: NaiveDate, h: u32| {
            tz.from_local_datetime(&d.and_hms_opt(h, 0, 0).expect("time"))
                .single()
                .expect("18:00 and 07:00 exist once")
                .with_timezone(&Utc)
        };
        let next = day.succ_opt().expect("next day");
        let (now, deadline) = (local(day, 18), local(next, 7));
        out.push(forty_kwh(now, deadline, slots(prices, now, deadline)));
        day = next;
    }
    out
}

/// Median and mean of `v`.
pub fn median_mean(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v.iter().sum::<f64>() / n as f64)
}

/// Powers of the site fixtures, in turn: the common wallbox powers.
pub const SITE_POWERS: [f64; 4] = [11.0, 7.4, 22.0, 3.7];

/// The benchmark's site instances: `site(count)`, two cars on an 11 kW
/// house connection (they take turns), and with `rules` every vehicle at
/// most 3 blocks with pauses of at least 30 minutes.
pub fn bench_site(
    count: usize,
    rules: bool,
    now: DateTime<Utc>,
    prices: Vec<PriceSlot>,
) -> planner::SiteRequest {
    let mut req = site(count, now, prices);
    if count == 2 {
        req.site_limit_kw = 11.0;
    }
    if rules {
        for v in &mut req.vehicles {
            v.max_blocks = Some(3);
            v.min_pause_minutes = Some(30);
        }
    }
    req
}

/// A site of `count` vehicles on `prices` from `now` (quarter hours for
/// 48 hours when built by [`quarter_hours`]): powers in turn from
/// [`SITE_POWERS`], 20 to 50 kWh each, deadlines spread from 10 to 40
/// hours ahead, and a limit of 40% of the summed power (at least the
/// largest power), so the limit binds.
pub fn site(count: usize, now: DateTime<Utc>, prices: Vec<PriceSlot>) -> planner::SiteRequest {
    let vehicles: Vec<planner::SiteVehicle> = (0..count)
        .map(|i| {
            let power = SITE_POWERS[i % 4];
            let kwh = 20.0 + (i * 7 % 31) as f64;
            planner::SiteVehicle {
                id: format!("car-{i}"),
                deadline: now + TimeDelta::minutes(600 + (i as i64 * 397) % 1800),
                battery_kwh: 100.0,
                soc_percent: 20.0,
                target_percent: 20.0 + kwh,
                max_power_kw: power,
                efficiency: 1.0,
                min_soc_percent: 0.0,
                charge_limit_percent: None,
                max_blocks: None,
                min_block_minutes: None,
                min_pause_minutes: None,
            }
        })
        .collect();
    let sum: f64 = vehicles.iter().map(|v| v.max_power_kw).sum();
    let limit = (0.4 * sum).max(22.0).min(sum);
    planner::SiteRequest {
        now,
        site_limit_kw: (limit * 10.0).round() / 10.0,
        tie_break: TieBreak::Later,
        prices,
        vehicles,
        reserved: Vec::new(),
    }
}

/// The depot of the hostile review of issue 12, where the block rules
/// make the joint plan expensive: [`site`] with every vehicle `kwh` from
/// an empty battery of that size to full, deadlines 37 minutes apart
/// from `span` after `now` down, a limit of `limit_kw`, and the block
/// rules `(max_blocks, min_block_minutes, min_pause_minutes)` on every
/// vehicle.
pub fn rules_depot(
    count: usize,
    (now, span): (DateTime<Utc>, TimeDelta),
    prices: Vec<PriceSlot>,
    kwh: f64,
    limit_kw: f64,
    (blocks, block, pause): (u32, u32, u32),
) -> planner::SiteRequest {
    let mut req = site(count, now, prices);
    req.site_limit_kw = limit_kw;
    for (i, v) in req.vehicles.iter_mut().enumerate() {
        v.deadline = now + span - TimeDelta::minutes(37 * i as i64);
        (v.battery_kwh, v.soc_percent, v.target_percent) = (kwh, 0.0, 100.0);
        v.max_blocks = Some(blocks);
        v.min_block_minutes = Some(block);
        v.min_pause_minutes = Some(pause);
    }
    req
}
