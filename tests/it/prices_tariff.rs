//! The tariff formula and time-of-use windows, across both DST changes.

use chrono::{DateTime, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Europe::Berlin;
use smartcharged::prices::tariff::Tariff;
use smartcharged::prices::tou::{local_to_utc, TouSchedule, TouSource, Window};
use smartcharged::prices::{Basis, PriceSource, Quote, Slot};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn hm(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

fn slot(a: &str, b: &str, price: f64) -> Slot {
    Slot {
        start: t(a),
        end: t(b),
        price,
    }
}

/// Night 22:00-06:00 at 0.21, day 0.34, in Berlin.
fn night_and_day() -> TouSchedule {
    TouSchedule {
        tz: Berlin,
        windows: vec![Window {
            days: vec![],
            from: hm("22:00"),
            to: hm("06:00"),
            price: 0.21,
        }],
        default: Some(0.34),
    }
}

#[test]
fn tou_windows_follow_local_time_over_spring_forward() {
    // 2024-03-31: 02:00 CET becomes 03:00 CEST.
    let s = night_and_day().slots(t("2024-03-30T12:00:00Z"), t("2024-04-01T12:00:00Z"));
    assert_eq!(
        s,
        vec![
            slot("2024-03-30T12:00:00Z", "2024-03-30T21:00:00Z", 0.34),
            // 22:00 CET to 06:00 CEST: seven hours of night.
            slot("2024-03-30T21:00:00Z", "2024-03-31T04:00:00Z", 0.21),
            slot("2024-03-31T04:00:00Z", "2024-03-31T20:00:00Z", 0.34),
            slot("2024-03-31T20:00:00Z", "2024-04-01T04:00:00Z", 0.21),
            slot("2024-04-01T04:00:00Z", "2024-04-01T12:00:00Z", 0.34),
        ]
    );
}

#[test]
fn tou_windows_follow_local_time_over_fall_back() {
    // 2024-10-27: 03:00 CEST becomes 02:00 CET.
    let s = night_and_day().slots(t("2024-10-26T12:00:00Z"), t("2024-10-28T12:00:00Z"));
    assert_eq!(
        s,
        vec![
            slot("2024-10-26T12:00:00Z", "2024-10-26T20:00:00Z", 0.34),
            // 22:00 CEST to 06:00 CET: nine hours of night.
            slot("2024-10-26T20:00:00Z", "2024-10-27T05:00:00Z", 0.21),
            slot("2024-10-27T05:00:00Z", "2024-10-27T21:00:00Z", 0.34),
            slot("2024-10-27T21:00:00Z", "2024-10-28T05:00:00Z", 0.21),
            slot("2024-10-28T05:00:00Z", "2024-10-28T12:00:00Z", 0.34),
        ]
    );
}

#[test]
fn edges_in_the_skipped_and_repeated_hour() {
    let spring = chrono::NaiveDate::from_ymd_opt(2024, 3, 31).unwrap();
    let fall = chrono::NaiveDate::from_ymd_opt(2024, 10, 27).unwrap();
    // 02:30 does not exist: it moves an hour later, to 03:30 CEST.
    assert_eq!(
        local_to_utc(&Berlin, spring, hm("02:30")),
        t("2024-03-31T01:30:00Z")
    );
    // 02:30 exists twice: the first (CEST) is taken.
    assert_eq!(
        local_to_utc(&Berlin, fall, hm("02:30")),
        t("2024-10-27T00:30:00Z")
    );
}

#[test]
fn weekday_windows_and_wrapping_past_midnight() {
    let weekend = TouSchedule {
        tz: Berlin,
        windows: vec![Window {
            days: vec![Weekday::Fri],
            from: hm("20:00"),
            to: hm("08:00"),
            price: 0.1,
        }],
        default: None,
    };
    // Friday 2024-11-01 20:00 CET to Saturday 08:00; nothing else is priced.
    let s = weekend.slots(t("2024-10-30T00:00:00Z"), t("2024-11-05T00:00:00Z"));
    assert_eq!(
        s,
        vec![slot("2024-11-01T19:00:00Z", "2024-11-02T07:00:00Z", 0.1)]
    );
}

#[tokio::test]
async fn tou_source_answers_any_range() {
    let source = TouSource {
        schedule: night_and_day(),
        currency: "EUR".into(),
    };
    let q = source
        .fetch(t("2024-03-31T00:00:00Z"), t("2024-03-31T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(q.basis, Basis::ConsumerPerKwh);
    assert_eq!(q.slots.first().unwrap().price, 0.21);
    assert_eq!(q.end(), Some(t("2024-03-31T12:00:00Z")));
}

fn german_tariff() -> Tariff {
    Tariff {
        multiplier: 1.0,
        markup_per_kwh: 0.02,
        vat: 0.19,
        grid_fee: TouSchedule {
            tz: Berlin,
            windows: vec![Window {
                days: vec![],
                from: hm("22:30"),
                to: hm("06:00"),
                price: 0.05,
            }],
            default: Some(0.08),
        },
        currency: "EUR".into(),
    }
}

#[test]
fn spot_prices_get_the_whole_formula_and_split_at_fee_edges() {
    let quote = Quote::new(
        Basis::SpotPerMwh,
        "EUR",
        vec![
            // 21:00-22:00 CEST: day fee.
            slot("2024-06-14T19:00:00Z", "2024-06-14T20:00:00Z", 100.0),
            // 22:00-23:00 CEST: the night fee starts at 22:30.
            slot("2024-06-14T20:00:00Z", "2024-06-14T21:00:00Z", -80.01),
        ],
    )
    .unwrap();
    let curve = german_tariff().apply(&quote);
    let p: Vec<(DateTime<Utc>, f64)> = curve.slots().iter().map(|s| (s.start, s.price)).collect();
    assert_eq!(p.len(), 3);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(p[0].1, (0.1 + 0.02 + 0.08) * 1.19), "{p:?}");
    assert_eq!(p[1].0, t("2024-06-14T20:00:00Z"));
    assert!(close(p[1].1, (-0.08001 + 0.02 + 0.08) * 1.19), "{p:?}");
    assert_eq!(p[2].0, t("2024-06-14T20:30:00Z"));
    assert!(close(p[2].1, (-0.08001 + 0.02 + 0.05) * 1.19), "{p:?}");
    assert_eq!(curve.currency, "EUR");
}

#[test]
fn consumer_prices_only_get_the_grid_fee() {
    let quote = Quote::new(
        Basis::ConsumerPerKwh,
        "EUR",
        vec![slot("2024-06-14T12:00:00Z", "2024-06-14T13:00:00Z", 0.3136)],
    )
    .unwrap();
    let curve = german_tariff().apply(&quote);
    assert!((curve.slots()[0].price - (0.3136 + 0.08 * 1.19)).abs() < 1e-12);
    // Without fees a consumer quote passes through unchanged.
    let plain = Tariff::spot_only("EUR").apply(&quote);
    assert_eq!(plain.slots()[0].price, 0.3136);
    assert_eq!(
        plain.slots()[0].end - plain.slots()[0].start,
        TimeDelta::hours(1)
    );
}

#[test]
fn merging_keeps_older_slots_outside_the_new_range() {
    let old = Quote::new(
        Basis::SpotPerMwh,
        "EUR",
        vec![
            slot("2024-06-13T10:00:00Z", "2024-06-13T11:00:00Z", 1.0),
            slot("2024-06-14T10:00:00Z", "2024-06-14T11:00:00Z", 2.0),
            slot("2024-06-14T11:00:00Z", "2024-06-14T12:00:00Z", 3.0),
        ],
    )
    .unwrap();
    let new = Quote::new(
        Basis::SpotPerMwh,
        "EUR",
        vec![
            slot("2024-06-14T11:00:00Z", "2024-06-14T11:15:00Z", 4.0),
            slot("2024-06-14T11:15:00Z", "2024-06-14T12:00:00Z", 5.0),
        ],
    )
    .unwrap();
    let merged = old.merged_with(&new, t("2024-06-14T00:00:00Z"));
    let prices: Vec<f64> = merged.slots.iter().map(|s| s.price).collect();
    assert_eq!(prices, vec![2.0, 4.0, 5.0]);
}
