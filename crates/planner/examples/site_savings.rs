//! What the joint site plan saves over planning each car alone and then
//! cutting to the limit, on every evening of DE-LU 2024.
//!
//! `cargo run --release -p planner --example site_savings` prints, per
//! site, the cost of both strategies over the year and the targets each
//! missed.
//!
//! *Alone, then cut* is what a load guard does with cars that plan on
//! their own: each car follows its own cheapest plan; at a minute where
//! the planned load exceeds the limit, cars are admitted by earliest
//! deadline and the others are cut; a cut car makes its lost minutes up
//! at the next minutes with room (before its deadline), as a charger that
//! resumes when the guard allows.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use planner::{plan_site, Planner, SiteRequest, SiteVehicle, TieBreak};

#[path = "../tests/common/mod.rs"]
mod common;

/// Cost, grid energy and missed targets of *alone, then cut*.
fn alone_then_cut(req: &SiteRequest, planner: &mut Planner) -> (f64, f64, usize) {
    let lim = (req.site_limit_kw * 1000.0 + 1e-6).floor() as i64;
    let n = req
        .vehicles
        .iter()
        .map(|v| (v.deadline - req.now).num_minutes())
        .max()
        .unwrap_or(0) as usize;
    let price: Vec<f64> = (0..n)
        .map(|t| {
            let at = req.now + TimeDelta::minutes(t as i64);
            req.prices
                .iter()
                .find(|p| p.start <= at && at < p.end)
                .map_or(0.0, |p| p.price_per_kwh)
        })
        .collect();
    struct Car {
        n: usize,
        w: i64,
        kw: f64,
        planned: Vec<bool>,
        left: u32,
        behind: u32,
    }
    let mut cars: Vec<Car> = req
        .vehicles
        .iter()
        .map(|v| {
            let plan = planner
                .plan(&v.request(req.now, req.tie_break, req.prices.clone()))
                .expect("valid vehicle");
            let mut planned = vec![false; n];
            for b in &plan.blocks {
                let a = (b.start - req.now).num_minutes() as usize;
                let e = (b.end - req.now).num_minutes() as usize;
                planned[a..e].fill(true);
            }
            Car {
                n: (v.deadline - req.now).num_minutes() as usize,
                w: (v.max_power_kw * 1000.0 - 1e-6).ceil() as i64,
                kw: v.max_power_kw,
                planned,
                left: plan.charge_minutes,
                behind: 0,
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..cars.len()).collect();
    order.sort_by_key(|&i| (cars[i].n, i));
    let (mut cost, mut energy) = (0.0, 0.0);
    for (t, &p) in price.iter().enumerate() {
        let mut load = 0;
        for &i in &order {
            let c = &mut cars[i];
            let wants = t < c.n && c.left > 0 && (c.planned[t] || c.behind > 0);
            if wants && load + c.w <= lim {
                load += c.w;
                c.left -= 1;
                if !c.planned[t] {
                    c.behind -= 1;
                }
                cost += p * c.kw / 60.0;
                energy += c.kw / 60.0;
            } else if wants && c.planned[t] {
                c.behind += 1;
            }
        }
    }
    let missed = cars.iter().filter(|c| c.left > 0).count();
    (cost, energy, missed)
}

fn car(id: &str, now: DateTime<Utc>, hours: i64, kw: f64, kwh: f64) -> SiteVehicle {
    SiteVehicle {
        id: id.into(),
        deadline: now + TimeDelta::hours(hours),
        battery_kwh: 100.0,
        soc_percent: 20.0,
        target_percent: 20.0 + kwh,
        max_power_kw: kw,
        efficiency: 1.0,
        min_soc_percent: 0.0,
        charge_limit_percent: None,
        max_blocks: None,
        min_block_minutes: None,
        min_pause_minutes: None,
    }
}

/// The sites of the table, for an evening starting at `now`.
fn sites(now: DateTime<Utc>, prices: &[planner::PriceSlot]) -> Vec<(&'static str, SiteRequest)> {
    let at = |limit: f64, vehicles: Vec<SiteVehicle>| SiteRequest {
        now,
        site_limit_kw: limit,
        tie_break: TieBreak::Later,
        prices: prices.to_vec(),
        vehicles,
        reserved: Vec::new(),
    };
    vec![
        (
            "house: 11 + 7.4 kW on 11 kW",
            at(
                11.0,
                vec![car("a", now, 13, 11.0, 30.0), car("b", now, 12, 7.4, 20.0)],
            ),
        ),
        (
            "house: 11 + 11 + 3.7 kW on 16 kW",
            at(
                16.0,
                vec![
                    car("a", now, 13, 11.0, 35.0),
                    car("b", now, 14, 11.0, 25.0),
                    car("c", now, 12, 3.7, 12.0),
                ],
            ),
        ),
        (
            "depot: 10 cars, 3.7-22 kW, 40% of the sum",
            common::site(10, now, prices.to_vec()),
        ),
    ]
}

fn main() {
    let hourly = common::hourly("DE-LU-2023-2025.csv");
    let mut planner = Planner::new();
    let mut rows: Vec<(&str, [f64; 4], [usize; 4])> = Vec::new();
    let mut day = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    while day.year() == 2024 {
        let now = Berlin
            .from_local_datetime(&day.and_hms_opt(18, 0, 0).expect("time"))
            .single()
            .expect("18:00 exists once")
            .with_timezone(&Utc);
        let slots = common::slots(&hourly, now, now + TimeDelta::hours(48));
        day = day.succ_opt().expect("next day");
        if slots.len() < 48 {
            continue;
        }
        for (name, req) in sites(now, &slots) {
            let joint = plan_site(&req).expect("valid site");
            let (cut_cost, cut_energy, cut_missed) = alone_then_cut(&req, &mut planner);
            let joint_energy: f64 = joint.vehicles.iter().map(|v| v.energy_kwh).sum();
            let joint_missed = joint.vehicles.iter().filter(|v| !v.feasible).count();
            let row = match rows.iter_mut().find(|r| r.0 == name) {
                Some(r) => r,
                None => {
                    rows.push((name, [0.0; 4], [0; 4]));
                    rows.last_mut().expect("just pushed")
                }
            };
            row.1[0] += joint.cost;
            row.1[1] += cut_cost;
            row.1[2] += joint_energy;
            row.1[3] += cut_energy;
            row.2[0] += 1;
            row.2[1] += joint_missed;
            row.2[2] += cut_missed;
            row.2[3] += usize::from(joint.exact);
        }
    }
    println!("DE-LU 2024, plug in 18:00 Berlin time, every evening");
    println!(
        "{:<42} {:>6} {:>7} {:>10} {:>10} {:>8} {:>11} {:>11}",
        "site", "nights", "exact", "joint EUR", "cut EUR", "saving", "joint miss", "cut miss"
    );
    for (name, f, c) in rows {
        println!(
            "{:<42} {:>6} {:>7} {:>10.2} {:>10.2} {:>7.1}% {:>11} {:>11}",
            name,
            c[0],
            c[3],
            f[0],
            f[1],
            (f[1] - f[0]) / f[1].abs() * 100.0,
            c[1],
            c[2]
        );
        println!(
            "{:<42} energy: joint {:.0} kWh, cut {:.0} kWh; per kWh: joint {:.4}, cut {:.4}",
            "",
            f[2],
            f[3],
            f[0] / f[2],
            f[1] / f[3]
        );
    }
}
