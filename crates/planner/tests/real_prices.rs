//! A year of evenings on real day-ahead prices (DE-LU 2024, SE3 2023):
//! plug in at 18:00, leave at 07:00, 40 kWh at 11 kW. Every plan must be
//! feasible, use exactly the minutes needed, and never cost more than
//! charging at once; with at most 3 blocks it may cost more than without a
//! limit, never less.

mod common;

use chrono_tz::Europe::{Berlin, Stockholm};
use planner::{PlanRequest, Planner};

fn check_year(requests: &[PlanRequest]) -> Vec<f64> {
    let mut planner = Planner::new();
    let mut savings = Vec::new();
    for req in requests {
        let p = planner.plan(req).expect("valid request");
        assert!(p.feasible, "{}", req.now);
        assert!(p.warnings.is_empty(), "{}: {:?}", req.now, p.warnings);
        assert_eq!(p.charge_minutes, 219, "{}", req.now);
        assert!(
            p.cost <= p.asap_cost + 1e-9,
            "{}: {} > {}",
            req.now,
            p.cost,
            p.asap_cost
        );
        let limited = planner
            .plan(&PlanRequest {
                max_blocks: Some(3),
                ..req.clone()
            })
            .expect("valid request");
        assert!(limited.blocks.len() <= 3);
        assert!(limited.cost >= p.cost - 1e-9, "{}", req.now);
        assert!(limited.cost <= limited.asap_cost + 1e-9, "{}", req.now);
        savings.push(p.saving());
    }
    savings
}

#[test]
fn de_lu_2024_every_evening() {
    let prices = common::hourly("DE-LU-2023-2025.csv");
    let requests = common::evenings(&prices, Berlin, 2024);
    assert_eq!(requests.len(), 366);
    // the two DST nights have 12 and 14 hours
    let hours: Vec<i64> = requests
        .iter()
        .map(|r| (r.deadline - r.now).num_hours())
        .collect();
    assert_eq!(hours.iter().filter(|&&h| h == 12).count(), 1);
    assert_eq!(hours.iter().filter(|&&h| h == 14).count(), 1);
    let mut savings = check_year(&requests);
    let (median, mean) = common::median_mean(&mut savings);
    assert!(median > 0.0 && mean > 0.0, "median {median}, mean {mean}");
}

#[test]
fn se3_2023_every_evening() {
    let prices = common::hourly("SE3-2023-2024.csv");
    let requests = common::evenings(&prices, Stockholm, 2023);
    assert_eq!(requests.len(), 365);
    let mut savings = check_year(&requests);
    let (median, mean) = common::median_mean(&mut savings);
    assert!(median > 0.0 && mean > 0.0, "median {median}, mean {mean}");
}
