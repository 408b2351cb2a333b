//! Hand-checked plans: each case says what the right answer is and why.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use planner::{plan, Plan, PlanError, PlanRequest, PriceSlot, TieBreak};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("rfc 3339")
}

fn berlin(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
    Berlin
        .with_ymd_and_hms(y, mo, d, h, 0, 0)
        .single()
        .expect("unambiguous local time")
        .with_timezone(&Utc)
}

/// Consecutive slots from `start`: (minutes, price per kWh).
fn slots(start: DateTime<Utc>, spec: &[(i64, f64)]) -> Vec<PriceSlot> {
    let mut t = start;
    spec.iter()
        .map(|&(mins, p)| {
            let s = PriceSlot {
                start: t,
                end: t + TimeDelta::minutes(mins),
                price_per_kwh: p,
            };
            t = s.end;
            s
        })
        .collect()
}

/// 60 kW and a 1000 kWh battery from 0%: a target of `minutes / 10`
/// percent is `minutes` minutes of charging, one kWh per minute.
fn request(
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    minutes: u32,
    prices: Vec<PriceSlot>,
) -> PlanRequest {
    PlanRequest {
        now,
        deadline,
        battery_kwh: 1000.0,
        soc_percent: 0.0,
        target_percent: f64::from(minutes) / 10.0,
        max_power_kw: 60.0,
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

fn blocks(p: &Plan) -> Vec<(String, String)> {
    p.blocks
        .iter()
        .map(|b| {
            (
                b.start.format("%Y-%m-%dT%H:%MZ").to_string(),
                b.end.format("%Y-%m-%dT%H:%MZ").to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn spring_dst_night_has_12_hours_and_ends_at_0700_local() {
    // 18:00 CET (17:00Z) to 07:00 CEST (05:00Z): 12 hours, not 13
    let (now, deadline) = (berlin(2024, 3, 30, 18), berlin(2024, 3, 31, 7));
    assert_eq!(deadline - now, TimeDelta::hours(12));
    // 13 hourly prices; the cheapest hour lies after the deadline
    let mut spec = vec![(60, 0.30); 13];
    spec[11] = (60, 0.10); // 04:00Z-05:00Z, the last hour before 07:00 CEST
    spec[12] = (60, 0.01); // 05:00Z, after the deadline
    let p = plan(&request(now, deadline, 60, slots(now, &spec))).unwrap();
    assert!(p.feasible);
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-03-31T04:00Z", "2024-03-31T05:00Z")])
    );
    assert!(close(p.cost, 6.0));
    assert!(close(p.asap_cost, 18.0));
}

#[test]
fn autumn_dst_night_has_14_hours() {
    // 18:00 CEST (16:00Z) to 07:00 CET (06:00Z): 14 hours
    let (now, deadline) = (berlin(2024, 10, 26, 18), berlin(2024, 10, 27, 7));
    assert_eq!(deadline - now, TimeDelta::hours(14));
    let mut spec = vec![(60, 0.30); 15];
    spec[13] = (60, 0.10); // 05:00Z-06:00Z, the 14th hour
    spec[14] = (60, 0.01);
    let p = plan(&request(now, deadline, 90, slots(now, &spec))).unwrap();
    // 60 minutes in the cheap hour and 30 more at 0.30, as late as possible:
    // right before it
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-10-27T04:30Z", "2024-10-27T06:00Z")])
    );
    assert!(close(p.cost, 6.0 + 9.0));
}

#[test]
fn negative_prices_are_used_but_never_overcharged() {
    let now = utc("2024-07-02T08:00:00Z");
    let spec = [(60, 0.05), (60, -0.50), (60, -0.10), (60, 0.02)];
    let p = plan(&request(
        now,
        now + TimeDelta::hours(4),
        90,
        slots(now, &spec),
    ))
    .unwrap();
    // exactly 90 minutes, not more: the -0.50 hour, then 30 of the -0.10
    // hour; next to the -0.50 hour they keep the plan in one block
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-07-02T09:00Z", "2024-07-02T10:30Z")])
    );
    assert_eq!(p.charge_minutes, 90);
    assert!(close(p.cost, -30.0 - 3.0));
    assert!(p.cost < p.asap_cost);
}

#[test]
fn equal_prices_charge_late_or_early_as_asked() {
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(60, 0.20); 6];
    let mut req = request(now, now + TimeDelta::hours(6), 45, slots(now, &spec));
    let late = plan(&req).unwrap();
    assert_eq!(
        blocks(&late),
        pairs(&[("2024-05-01T23:15Z", "2024-05-02T00:00Z")])
    );
    req.tie_break = TieBreak::Earlier;
    let early = plan(&req).unwrap();
    assert_eq!(
        blocks(&early),
        pairs(&[("2024-05-01T18:00Z", "2024-05-01T18:45Z")])
    );
    assert_eq!(late.cost, early.cost);
}

#[test]
fn equal_prices_in_separate_slots_prefer_one_block() {
    // two 0.10 hours apart, 90 minutes: two blocks either way; the later
    // hour whole and the last 30 minutes of the earlier one is the latest
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(60, 0.10), (60, 0.30), (60, 0.10), (60, 0.30)];
    let p = plan(&request(
        now,
        now + TimeDelta::hours(4),
        90,
        slots(now, &spec),
    ))
    .unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[
            ("2024-05-01T18:30Z", "2024-05-01T19:00Z"),
            ("2024-05-01T20:00Z", "2024-05-01T21:00Z")
        ])
    );
    // and with adjacent equal slots, a single block
    let spec = [(60, 0.30), (60, 0.10), (60, 0.10), (60, 0.30)];
    let p = plan(&request(
        now,
        now + TimeDelta::hours(4),
        90,
        slots(now, &spec),
    ))
    .unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T19:30Z", "2024-05-01T21:00Z")])
    );
}

#[test]
fn deadline_inside_a_slot_cuts_the_slot() {
    let now = utc("2024-05-01T04:00:00Z");
    let spec = [(60, 0.30), (60, 0.20), (60, 0.05)];
    // deadline 06:30: only half of the 0.05 hour is usable
    let p = plan(&request(
        now,
        utc("2024-05-01T06:30:00Z"),
        45,
        slots(now, &spec),
    ))
    .unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T05:45Z", "2024-05-01T06:30Z")])
    );
    assert!(close(p.cost, 15.0 * 0.20 + 30.0 * 0.05));
}

#[test]
fn now_inside_a_slot_starts_at_the_next_whole_minute() {
    let from = utc("2024-05-01T17:00:00Z");
    let spec = [(60, 0.10), (60, 0.30)];
    let now = utc("2024-05-01T17:23:30Z");
    let p = plan(&request(
        now,
        from + TimeDelta::hours(2),
        36,
        slots(from, &spec),
    ))
    .unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T17:24Z", "2024-05-01T18:00Z")])
    );
    // charging at once also starts at 17:24
    assert!(close(p.asap_cost, p.cost));
}

#[test]
fn quarter_hours_and_hours_mixed() {
    let now = utc("2024-05-01T12:00:00Z");
    let spec = [
        (60, 0.20),
        (15, 0.30),
        (15, 0.10),
        (15, 0.30),
        (15, 0.10),
        (60, 0.15),
    ];
    let mut req = request(now, now + TimeDelta::hours(3), 30, slots(now, &spec));
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[
            ("2024-05-01T13:15Z", "2024-05-01T13:30Z"),
            ("2024-05-01T13:45Z", "2024-05-01T14:00Z")
        ])
    );
    assert!(close(p.cost, 3.0));
    // one block: the last 0.10 quarter and 15 minutes at 0.15 (3.75) beat
    // 30 minutes at 0.15 (4.5) and 0.10 + 0.30 (6.0)
    req.max_blocks = Some(1);
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T13:45Z", "2024-05-01T14:15Z")])
    );
    assert!(close(p.cost, 3.75));
}

#[test]
fn max_blocks_needs_dynamic_programming_not_greedy_merging() {
    // cheapest minutes: two short dips far apart; with one block the best
    // window is the flat 0.12 stretch, which contains neither dip
    let now = utc("2024-05-01T00:00:00Z");
    let spec = [(30, 0.05), (120, 0.40), (90, 0.12), (120, 0.40), (30, 0.05)];
    let mut req = request(now, now + TimeDelta::minutes(390), 60, slots(now, &spec));
    let p = plan(&req).unwrap();
    assert_eq!(p.blocks.len(), 2);
    assert!(close(p.cost, 3.0));
    req.max_blocks = Some(1);
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T03:00Z", "2024-05-01T04:00Z")])
    );
    assert!(close(p.cost, 7.2));
}

#[test]
fn min_block_minutes_forbids_short_blocks_but_the_last() {
    let now = utc("2024-05-01T00:00:00Z");
    // 10-minute dips: 20 minutes of charging as two dips would make a
    // 10-minute first block
    let spec = [(10, 0.01), (50, 0.50), (30, 0.10), (30, 0.50), (10, 0.01)];
    let mut req = request(now, now + TimeDelta::minutes(130), 20, slots(now, &spec));
    assert_eq!(plan(&req).unwrap().blocks.len(), 2);
    req.min_block_minutes = Some(15);
    let p = plan(&req).unwrap();
    // a 10-minute dip cannot be a first block any more; the last block may
    // be short: 15 minutes at 0.10 (1.5), then 5 in the final dip (0.05),
    // both as late as possible
    assert_eq!(
        blocks(&p),
        pairs(&[
            ("2024-05-01T01:15Z", "2024-05-01T01:30Z"),
            ("2024-05-01T02:05Z", "2024-05-01T02:10Z")
        ])
    );
    assert!(close(p.cost, 1.55));
    // one block only: 20 minutes at 0.10
    req.max_blocks = Some(1);
    assert!(close(plan(&req).unwrap().cost, 2.0));
    req.max_blocks = None;
    // a minimum longer than the whole charge allows one block only
    req.min_block_minutes = Some(planner::MAX_MINUTES);
    let p = plan(&req).unwrap();
    assert_eq!(p.blocks.len(), 1);
    assert!(close(p.cost, 2.0));
    // allowing 10-minute blocks again brings back the dips
    req.min_block_minutes = Some(10);
    assert!(close(plan(&req).unwrap().cost, 0.2));
}

#[test]
fn min_soc_is_charged_at_once() {
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(60, 0.40), (60, 0.10), (60, 0.10)];
    let mut req = request(now, now + TimeDelta::hours(3), 60, slots(now, &spec));
    req.min_soc_percent = 2.0; // 20 minutes now, at 0.40
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[
            ("2024-05-01T18:00Z", "2024-05-01T18:20Z"),
            ("2024-05-01T20:20Z", "2024-05-01T21:00Z")
        ])
    );
    assert!(close(p.cost, 20.0 * 0.40 + 40.0 * 0.10));
}

#[test]
fn an_unreachable_goal_charges_from_now_on_and_says_so() {
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(60, 0.40), (60, 0.10)];
    let p = plan(&request(
        now,
        now + TimeDelta::hours(2),
        150,
        slots(now, &spec),
    ))
    .unwrap();
    assert!(!p.feasible);
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T18:00Z", "2024-05-01T20:00Z")])
    );
    assert_eq!(p.charge_minutes, 120);
    assert!(close(p.shortfall_kwh, 30.0));
    assert!(p.warnings.iter().any(|w| w.contains("cannot be met")));
}

#[test]
fn unknown_prices_are_forecast_from_history_and_tentative() {
    // prices known until 00:00; the night after is unknown, but the same
    // hours a day earlier are known: 03:00 was cheap then
    let from = utc("2024-05-01T00:00:00Z");
    let mut spec = vec![(60, 0.30); 24];
    spec[3] = (60, 0.05);
    let now = utc("2024-05-01T20:00:00Z");
    let deadline = utc("2024-05-02T06:00:00Z");
    let p = plan(&request(now, deadline, 60, slots(from, &spec))).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-02T03:00Z", "2024-05-02T04:00Z")])
    );
    assert!(p.blocks[0].tentative);
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("24 hours earlier") && w.contains("tentative")));
    // a week of history wins over the day before
    let week = slots(utc("2024-04-25T00:00:00Z"), &[(60 * 24, 0.01)]);
    let mut prices = week;
    prices.extend(slots(from, &spec));
    let p = plan(&request(now, deadline, 60, prices)).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-02T05:00Z", "2024-05-02T06:00Z")])
    );
    assert!(p.warnings.iter().any(|w| w.contains("7 days earlier")));
    // without history, unknown time costs the highest known price: never
    // free, so known cheap hours win
    let known = slots(now, &[(60, 0.20), (60, 0.30)]);
    let p = plan(&request(now, deadline, 60, known)).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T20:00Z", "2024-05-01T21:00Z")])
    );
    assert!(p.warnings.iter().any(|w| w.contains("highest known price")));
    assert!(!p.blocks[0].tentative);
}

#[test]
fn charge_limit_caps_the_target_and_opportunistic_charging_fills_to_it() {
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(60, 0.30), (60, 0.02), (60, 0.10), (60, 0.30)];
    let mut req = request(now, now + TimeDelta::hours(4), 90, slots(now, &spec));
    req.charge_limit_percent = Some(8.0);
    let p = plan(&req).unwrap();
    assert_eq!(p.charge_minutes, 80);
    assert!(p.warnings.iter().any(|w| w.contains("charge limit")));
    // target 3%, limit 8%: 30 minutes needed, 50 more allowed where the
    // price is at most 0.05: only the 0.02 hour qualifies
    req.target_percent = 3.0;
    req.opportunistic_price = Some(0.05);
    let p = plan(&req).unwrap();
    assert_eq!(p.charge_minutes, 60);
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T19:00Z", "2024-05-01T20:00Z")])
    );
}

#[test]
fn bad_requests_name_the_field() {
    let now = utc("2024-05-01T18:00:00Z");
    let good = request(
        now,
        now + TimeDelta::hours(2),
        30,
        slots(now, &[(60, 0.1), (60, 0.2)]),
    );
    let field = |req: PlanRequest| match plan(&req) {
        Err(PlanError::Invalid { field, .. }) => field,
        other => panic!("expected invalid, got {other:?}"),
    };
    assert_eq!(
        field(PlanRequest {
            battery_kwh: -1.0,
            ..good.clone()
        }),
        "battery_kwh"
    );
    assert_eq!(
        field(PlanRequest {
            efficiency: f64::NAN,
            ..good.clone()
        }),
        "efficiency"
    );
    assert_eq!(
        field(PlanRequest {
            efficiency: 1.5,
            ..good.clone()
        }),
        "efficiency"
    );
    assert_eq!(
        field(PlanRequest {
            deadline: now,
            ..good.clone()
        }),
        "deadline"
    );
    assert_eq!(
        field(PlanRequest {
            max_blocks: Some(0),
            ..good.clone()
        }),
        "max_blocks"
    );
    let mut unsorted = good.clone();
    unsorted.prices.swap(0, 1);
    assert_eq!(field(unsorted), "prices[1].start");
    let mut nan = good.clone();
    nan.prices[1].price_per_kwh = f64::NAN;
    assert_eq!(field(nan), "prices[1].price_per_kwh");
    let mut odd = good.clone();
    odd.prices[0].end += TimeDelta::seconds(30);
    assert_eq!(field(odd), "prices[0].end");
}

#[test]
fn same_request_same_plan_bit_for_bit() {
    let now = utc("2024-05-01T18:07:00Z");
    let spec: Vec<(i64, f64)> = (0..48)
        .map(|i| (15, 0.1 + f64::from(i % 7) * 0.013))
        .collect();
    let mut req = request(
        now,
        now + TimeDelta::hours(11),
        200,
        slots(utc("2024-05-01T18:00:00Z"), &spec),
    );
    req.max_blocks = Some(3);
    let a = serde_json::to_string(&plan(&req).unwrap()).unwrap();
    let b = serde_json::to_string(&plan(&req).unwrap()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn opportunistic_minutes_respect_the_block_limit() {
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(60, 0.30), (60, 0.02), (60, 0.30), (60, 0.01)];
    let mut req = request(now, now + TimeDelta::hours(4), 30, slots(now, &spec));
    req.charge_limit_percent = Some(8.0); // 80 minutes at most
    req.opportunistic_price = Some(0.05);
    // 30 needed in the 0.01 hour; 50 more: the rest of that hour, then the
    // latest 20 minutes of the 0.02 hour
    let p = plan(&req).unwrap();
    assert_eq!(p.charge_minutes, 80);
    assert_eq!(
        blocks(&p),
        pairs(&[
            ("2024-05-01T19:40Z", "2024-05-01T20:00Z"),
            ("2024-05-01T21:00Z", "2024-05-01T22:00Z")
        ])
    );
    // one block allowed: the 0.02 hour would start a second one
    req.max_blocks = Some(1);
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T21:00Z", "2024-05-01T22:00Z")])
    );
    // a minimum block length: only minutes that extend a block
    req.max_blocks = None;
    req.min_block_minutes = Some(15);
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T21:00Z", "2024-05-01T22:00Z")])
    );
}

#[test]
fn numbers_out_of_range_name_their_field() {
    let now = utc("2024-05-01T18:00:00Z");
    let good = request(
        now,
        now + TimeDelta::hours(2),
        30,
        slots(now, &[(60, 0.1), (60, 0.2)]),
    );
    let field = |req: PlanRequest| match plan(&req) {
        Err(PlanError::Invalid { field, .. }) => field,
        other => panic!("expected invalid, got {other:?}"),
    };
    // these planned before, with infinite energies or a null shortfall
    let cases: Vec<(PlanRequest, &str)> = vec![
        (
            PlanRequest {
                efficiency: 5e-324,
                ..good.clone()
            },
            "efficiency",
        ),
        (
            PlanRequest {
                efficiency: 0.04,
                ..good.clone()
            },
            "efficiency",
        ),
        (
            PlanRequest {
                battery_kwh: 1e308,
                ..good.clone()
            },
            "battery_kwh",
        ),
        (
            PlanRequest {
                battery_kwh: planner::MAX_BATTERY_KWH * 1.001,
                ..good.clone()
            },
            "battery_kwh",
        ),
        (
            PlanRequest {
                max_power_kw: 1e308,
                ..good.clone()
            },
            "max_power_kw",
        ),
        (
            PlanRequest {
                opportunistic_price: Some(1e300),
                ..good.clone()
            },
            "opportunistic_price",
        ),
        (
            PlanRequest {
                min_block_minutes: Some(planner::MAX_MINUTES + 1),
                ..good.clone()
            },
            "min_block_minutes",
        ),
        (
            PlanRequest {
                min_pause_minutes: Some(u32::MAX),
                ..good.clone()
            },
            "min_pause_minutes",
        ),
        (
            PlanRequest {
                finish_by_departure_minutes: Some(planner::MAX_MINUTES + 1),
                ..good.clone()
            },
            "finish_by_departure_minutes",
        ),
        (
            PlanRequest {
                max_blocks: Some(planner::MAX_BLOCKS_LIMIT + 1),
                ..good.clone()
            },
            "max_blocks",
        ),
    ];
    for (req, want) in cases {
        assert_eq!(field(req), want);
    }
}

#[test]
fn every_number_of_a_plan_is_finite_at_the_ends_of_the_ranges() {
    let now = utc("2024-05-01T18:00:30Z");
    let deadline = now + planner::MAX_HORIZON;
    let prices = slots(utc("2024-05-01T18:00:00Z"), &[(7 * 24 * 60 + 1, 10_000.0)]);
    let base = PlanRequest {
        battery_kwh: planner::MAX_BATTERY_KWH,
        soc_percent: 0.0,
        target_percent: 100.0,
        efficiency: planner::MIN_EFFICIENCY,
        charging_now: true,
        ..request(now, deadline, 0, prices)
    };
    for power in [5e-324, 1e-9, planner::MAX_POWER_KW] {
        let p = plan(&PlanRequest {
            max_power_kw: power,
            ..base.clone()
        })
        .unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("null"), "{json}");
        for x in [p.energy_kwh, p.cost, p.asap_cost, p.shortfall_kwh] {
            assert!(x.is_finite(), "{json}");
        }
        assert!(p
            .blocks
            .iter()
            .all(|b| b.cost.is_finite() && b.energy_kwh.is_finite()));
    }
}

#[test]
fn charging_now_continues_the_running_block_from_now() {
    let from = utc("2024-05-01T17:00:00Z");
    let spec = [(60, 0.10), (60, 0.30)];
    let now = utc("2024-05-01T17:23:30Z");
    let mut req = request(now, from + TimeDelta::hours(2), 36, slots(from, &spec));
    req.charging_now = true;
    let p = plan(&req).unwrap();
    // the block starts at now, not at 17:24: no STOP for half a minute
    assert_eq!(p.blocks.len(), 1);
    assert_eq!(p.blocks[0].start, now);
    assert_eq!(p.blocks[0].end, utc("2024-05-01T18:00:00Z"));
    assert!(p.is_charging_at(now));
    // 36 planned minutes plus the 30 s before 17:24, at 0.10
    assert_eq!(p.charge_minutes, 36);
    assert!(close(p.energy_kwh, 36.5));
    assert!(close(p.cost, 3.65));
    assert!(close(p.asap_cost, 3.65));
}

#[test]
fn charging_now_does_not_count_the_running_block() {
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(30, 0.05), (30, 0.50), (60, 0.10)];
    let mut req = request(now, now + TimeDelta::hours(2), 60, slots(now, &spec));
    req.max_blocks = Some(1);
    // one block: the 0.10 hour (6.0) beats 18:00-19:00 (16.5)
    assert_eq!(
        blocks(&plan(&req).unwrap()),
        pairs(&[("2024-05-01T19:00Z", "2024-05-01T20:00Z")])
    );
    // charging now: the cheap half hour continues the session, and the one
    // START left goes to the last half hour: 1.5 + 3.0
    req.charging_now = true;
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[
            ("2024-05-01T18:00Z", "2024-05-01T18:30Z"),
            ("2024-05-01T19:30Z", "2024-05-01T20:00Z")
        ])
    );
    assert!(close(p.cost, 4.5));
}

#[test]
fn charging_now_keeps_charging_on_equal_prices_and_skips_min_block() {
    let now = utc("2024-05-01T18:00:00Z");
    let mut req = request(
        now,
        now + TimeDelta::hours(6),
        45,
        slots(now, &[(60, 0.20); 6]),
    );
    req.charging_now = true;
    // as cheap as the latest 45 minutes, and no STOP and START
    assert_eq!(
        blocks(&plan(&req).unwrap()),
        pairs(&[("2024-05-01T18:00Z", "2024-05-01T18:45Z")])
    );
    // a 10-minute dip now: too short for a first block of 30 minutes, but
    // the running session may take it
    let spec = [(10, 0.01), (50, 0.50), (60, 0.10)];
    let mut req = request(now, now + TimeDelta::hours(2), 40, slots(now, &spec));
    req.min_block_minutes = Some(30);
    assert_eq!(
        blocks(&plan(&req).unwrap()),
        pairs(&[("2024-05-01T19:20Z", "2024-05-01T20:00Z")])
    );
    req.charging_now = true;
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[
            ("2024-05-01T18:00Z", "2024-05-01T18:10Z"),
            ("2024-05-01T19:30Z", "2024-05-01T20:00Z")
        ])
    );
    assert!(close(p.cost, 0.1 + 3.0));
}

#[test]
fn min_pause_minutes_keeps_blocks_apart() {
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(15, 0.10), (15, 0.40), (15, 0.10), (75, 0.30)];
    let mut req = request(now, now + TimeDelta::hours(2), 30, slots(now, &spec));
    // both cheap quarters, 15 minutes apart
    assert!(close(plan(&req).unwrap().cost, 3.0));
    // a pause of 20: 10 minutes, 20 off, then the second cheap quarter and
    // 5 minutes at 0.30 (1.0 + 1.5 + 1.5); stopping at 18:15 and starting
    // at 18:35 costs the same but charges earlier
    req.min_pause_minutes = Some(20);
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[
            ("2024-05-01T18:00Z", "2024-05-01T18:10Z"),
            ("2024-05-01T18:30Z", "2024-05-01T18:50Z")
        ])
    );
    assert!(close(p.cost, 4.0));
    // 0 and 1 are no limit
    req.min_pause_minutes = Some(1);
    assert!(close(plan(&req).unwrap().cost, 3.0));
}

#[test]
fn min_pause_minutes_after_stopping_a_running_session() {
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(5, 0.50), (55, 0.10), (60, 0.20)];
    let mut req = request(now, now + TimeDelta::hours(2), 45, slots(now, &spec));
    req.min_pause_minutes = Some(20);
    // not charging: waiting until the first block is no pause
    assert_eq!(
        blocks(&plan(&req).unwrap()),
        pairs(&[("2024-05-01T18:15Z", "2024-05-01T19:00Z")])
    );
    // charging: stopping now and starting at 18:15 would be a 15-minute
    // pause; restarting at 18:20 and running 5 minutes into the 0.20 hour
    // (4.0 + 1.0) beats going on at 0.50 for 5 minutes (2.5 + 4.0)
    req.charging_now = true;
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T18:20Z", "2024-05-01T19:05Z")])
    );
    assert!(close(p.cost, 5.0));
}

#[test]
fn finish_by_departure_minutes_puts_the_last_block_near_the_deadline() {
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(60, 0.10), (180, 0.30)];
    let mut req = request(now, now + TimeDelta::hours(4), 30, slots(now, &spec));
    assert_eq!(
        blocks(&plan(&req).unwrap()),
        pairs(&[("2024-05-01T18:30Z", "2024-05-01T19:00Z")])
    );
    // the last block must end at 21:00 or later: one minute at 0.30 is
    // enough, as late as possible, and the earliest cheap minute goes
    req.finish_by_departure_minutes = Some(60);
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[
            ("2024-05-01T18:31Z", "2024-05-01T19:00Z"),
            ("2024-05-01T21:59Z", "2024-05-01T22:00Z")
        ])
    );
    assert!(close(p.cost, 2.9 + 0.3));
    assert!(p.warnings.is_empty());
    // with one block only, all 30 minutes go to the end of the window
    req.max_blocks = Some(1);
    let p = plan(&req).unwrap();
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T21:30Z", "2024-05-01T22:00Z")])
    );
}

#[test]
fn finish_by_departure_minutes_gives_way_when_nothing_meets_it() {
    let now = utc("2024-05-01T18:00:00Z");
    let spec = [(60, 0.10), (180, 0.30)];
    let mut req = request(now, now + TimeDelta::hours(4), 30, slots(now, &spec));
    req.finish_by_departure_minutes = Some(60);
    // 10 minutes forced now and one block at most: the block starts now
    // and cannot reach 21:00; the target still comes first
    req.min_soc_percent = 1.0;
    req.max_blocks = Some(1);
    let p = plan(&req).unwrap();
    assert!(p.feasible);
    assert_eq!(
        blocks(&p),
        pairs(&[("2024-05-01T18:00Z", "2024-05-01T18:30Z")])
    );
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("planned without finish_by_departure_minutes")));
    // nothing to charge: nothing to place near the deadline, and it says so
    req.target_percent = 0.0;
    req.min_soc_percent = 0.0;
    let p = plan(&req).unwrap();
    assert!(p.blocks.is_empty());
    assert!(p.warnings.iter().any(|w| w.contains("nothing to charge")));
}

#[test]
fn charging_now_counts_the_seconds_before_the_first_whole_minute() {
    let from = utc("2024-05-01T17:00:00Z");
    let spec = [(60, 0.10), (60, 0.30)];
    let now = utc("2024-05-01T17:23:30Z");
    // 35.4 kWh at 60 kW: 36 whole minutes from 17:24, or 35 after the
    // half minute the running session charges before 17:24
    let mut req = request(now, from + TimeDelta::hours(2), 0, slots(from, &spec));
    req.target_percent = 3.54;
    let p = plan(&req).unwrap();
    assert_eq!(p.charge_minutes, 36, "not charging: whole minutes only");
    req.charging_now = true;
    let p = plan(&req).unwrap();
    assert_eq!(p.blocks.len(), 1);
    assert_eq!(p.blocks[0].start, now);
    assert_eq!(p.blocks[0].end, utc("2024-05-01T17:59:00Z"));
    assert_eq!(p.charge_minutes, 35);
    assert!(close(p.energy_kwh, 35.5), "{}", p.energy_kwh);
    assert!(close(p.cost, 3.55), "{}", p.cost);
    // when the session should stop instead, the whole minutes stay: a
    // cheap hour later, a dear one now
    let spec = [(60, 0.30), (60, 0.10)];
    let mut late = request(now, from + TimeDelta::hours(2), 0, slots(from, &spec));
    late.target_percent = 3.54;
    late.charging_now = true;
    let p = plan(&late).unwrap();
    assert_eq!(p.charge_minutes, 36);
    assert_eq!(p.blocks[0].start, utc("2024-05-01T18:24:00Z"));
}
