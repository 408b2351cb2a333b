//! Every provider parses real responses (tests/data/fixtures, see its
//! PROVENANCE.md) with exact values for chosen slots.

use chrono::{DateTime, TimeDelta, Utc};
use smartcharged::prices::{
    awattar, energidataservice, entsoe, file, nordpool, octopus, tibber, Basis, PriceCurve, Quote,
    Slot, SourceError,
};

fn fixture(path: &str) -> String {
    let p = format!("{}/tests/data/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The slot starting at `start`, which must exist.
fn at(q: &Quote, start: &str) -> Slot {
    let s = t(start);
    *q.slots
        .iter()
        .find(|x| x.start == s)
        .unwrap_or_else(|| panic!("no slot at {start}"))
}

/// Asserts contiguity: each slot starts where the previous ended.
fn assert_contiguous(q: &Quote) {
    for w in q.slots.windows(2) {
        assert_eq!(w[0].end, w[1].start, "gap or overlap after {}", w[0].start);
    }
}

#[test]
fn awattar_three_days_with_negative_prices() {
    let q = awattar::parse(&fixture("awattar/marketdata_de_20240614-16.json")).unwrap();
    assert_eq!(
        (q.basis, q.currency.as_str(), q.slots.len()),
        (Basis::SpotPerMwh, "EUR", 72)
    );
    assert_contiguous(&q);
    assert_eq!(q.slots[0].start, t("2024-06-13T22:00:00Z"));
    assert_eq!(q.slots[0].price, 83.13);
    assert_eq!(at(&q, "2024-06-15T12:00:00Z").price, -80.01);
    assert_eq!(q.end(), Some(t("2024-06-16T22:00:00Z")));
}

#[test]
fn entsoe_picks_classification_1_and_fills_omitted_points() {
    let q = entsoe::parse(&fixture(
        "entsoe/A44_DE-LU_PT60M+PT15M_2024-10-06_2024-10-07.xml",
    ))
    .unwrap();
    // Position 1 is the hourly SDAC series; the 15-minute series is ignored.
    assert_eq!(q.slots.len(), 48);
    assert!(q
        .slots
        .iter()
        .all(|s| s.end - s.start == TimeDelta::hours(1)));
    assert_contiguous(&q);
    assert_eq!(at(&q, "2024-10-05T22:00:00Z").price, 67.04);
    // Position 15 of the first day is omitted (A03): it repeats position 14.
    assert_eq!(at(&q, "2024-10-06T11:00:00Z").price, -0.01);
    assert_eq!(at(&q, "2024-10-06T12:00:00Z").price, -0.01);
    assert_eq!(at(&q, "2024-10-06T22:00:00Z").price, 34.58);
}

#[test]
fn entsoe_hourly_series_equals_the_published_day_ahead_series() {
    let q = entsoe::parse(&fixture(
        "entsoe/A44_DE-LU_PT60M+PT15M_2024-10-06_2024-10-07.xml",
    ))
    .unwrap();
    let path = format!(
        "{}/tests/data/prices/DE-LU-2024-10-05_07.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let csv = std::fs::read_to_string(&path).unwrap();
    let series = file::parse(std::path::Path::new(&path), &csv, "EUR").unwrap();
    for s in &q.slots {
        assert_eq!(
            at(&series, &s.start.to_rfc3339()).price,
            s.price,
            "at {}",
            s.start
        );
    }
}

#[test]
fn entsoe_15_minute_document_with_gaps() {
    let q = entsoe::parse(&fixture("entsoe/A44_DE-LU_PT15M_2025-10-31_2025-11-01.xml")).unwrap();
    assert_eq!(q.slots.len(), 192);
    assert!(q
        .slots
        .iter()
        .all(|s| s.end - s.start == TimeDelta::minutes(15)));
    assert_contiguous(&q);
    // mRID 2 (position 1) and not mRID 1 (position 2, 91.45).
    assert_eq!(at(&q, "2025-10-30T23:00:00Z").price, 102.81);
    assert_eq!(at(&q, "2025-10-31T23:00:00Z").price, 63.5);
    // mRID 4 omits position 45 (10:00Z): filled with position 44.
    assert_eq!(at(&q, "2025-11-01T09:45:00Z").price, 15.0);
    assert_eq!(at(&q, "2025-11-01T10:00:00Z").price, 15.0);
    assert_eq!(q.end(), Some(t("2025-11-01T23:00:00Z")));
}

#[test]
fn entsoe_documents_without_classification() {
    let ch = entsoe::parse(&fixture("entsoe/A44_CH_PT60M_2025-11-26_2025-11-27.xml")).unwrap();
    assert_eq!(ch.slots.len(), 48);
    assert_eq!(at(&ch, "2025-11-25T23:00:00Z").price, 104.06);
    assert_eq!(at(&ch, "2025-11-26T23:00:00Z").price, 110.63);
    let be = entsoe::parse(&fixture("entsoe/A44_BE_PT60M_2024-10-08.xml")).unwrap();
    assert_eq!(be.slots.len(), 24);
    assert_eq!(at(&be, "2024-10-08T11:00:00Z").price, 63.86);
}

#[test]
fn entsoe_acknowledgement_means_not_published() {
    let ack = r#"<?xml version="1.0" encoding="UTF-8"?>
<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
  <mRID>x</mRID>
  <Reason><code>999</code><text>No matching data found for Data item Day-ahead Prices</text></Reason>
</Acknowledgement_MarketDocument>"#;
    assert!(matches!(entsoe::parse(ack), Err(SourceError::NotPublished)));
    assert!(matches!(
        entsoe::parse("<Publication_MarketDocument><TimeSeries>"),
        Err(SourceError::Malformed(_))
    ));
}

#[test]
fn entsoe_zone_table() {
    assert_eq!(
        entsoe::zone_eic("de-lu").as_deref(),
        Some("10Y1001A1001A82H")
    );
    assert_eq!(entsoe::zone_eic("SE3").as_deref(), Some("10Y1001A1001A46L"));
    assert_eq!(
        entsoe::zone_eic("10YAT-APG------L").as_deref(),
        Some("10YAT-APG------L")
    );
    assert_eq!(entsoe::zone_eic("Atlantis"), None);
}

#[test]
fn energidataservice_fall_back_day_has_25_hours() {
    let text = fixture("energidataservice/Elspotprices_export_DK2_2021-10-31_dst_fallback.csv");
    let q = energidataservice::parse_csv(&text, "DK2", "EUR").unwrap();
    assert_eq!(q.slots.len(), 25);
    assert_contiguous(&q);
    // Local 2021-10-31 in Copenhagen: 22:00Z the day before to 23:00Z.
    assert_eq!(q.slots[0].start, t("2021-10-30T22:00:00Z"));
    assert_eq!(q.end(), Some(t("2021-10-31T23:00:00Z")));
    // HourDK 02:00 twice: once CEST (00:00Z), once CET (01:00Z).
    assert_eq!(at(&q, "2021-10-31T00:00:00Z").price, 13.67);
    assert_eq!(at(&q, "2021-10-31T01:00:00Z").price, 13.09);
    let dkk = energidataservice::parse_csv(&text, "DK2", "DKK").unwrap();
    assert_eq!(at(&dkk, "2021-10-31T00:00:00Z").price, 101.690002);
}

#[test]
fn energidataservice_spring_forward_day_has_23_hours() {
    let text =
        fixture("energidataservice/Elspotprices_export_SE3_SE4_2024-03-31_dst_springforward.csv");
    let q = energidataservice::parse_csv(&text, "SE3", "EUR").unwrap();
    assert_eq!(q.slots.len(), 23);
    assert_contiguous(&q);
    assert_eq!(q.slots[0].start, t("2024-03-30T23:00:00Z"));
    assert_eq!(at(&q, "2024-03-31T00:00:00Z").price, 42.02);
    // HourDK jumps from 01:00 to 03:00 here, UTC does not.
    assert_eq!(at(&q, "2024-03-31T01:00:00Z").price, 42.099998);
    assert_eq!(q.end(), Some(t("2024-03-31T22:00:00Z")));
    assert_eq!(
        energidataservice::parse_csv(&text, "SE4", "EUR")
            .unwrap()
            .slots
            .len(),
        23
    );
}

#[test]
fn energidataservice_json_answers() {
    let legacy = energidataservice::parse(
        &fixture("energidataservice/legacy_graphql_elspotprices_2022-03-25.json"),
        "DK1",
        "EUR",
    )
    .unwrap();
    assert_eq!(at(&legacy, "2022-03-25T00:00:00Z").price, 242.0);
    assert_eq!(at(&legacy, "2022-03-25T01:00:00Z").price, 234.29);
    let rest = r#"{"total":3,"dataset":"DayAheadPrices","records":[
        {"TimeUTC":"2025-10-01T22:15:00","TimeDK":"2025-10-02T00:15:00","PriceArea":"DK1","DayAheadPriceDKK":-3.5,"DayAheadPriceEUR":-0.47},
        {"TimeUTC":"2025-10-01T22:00:00","TimeDK":"2025-10-02T00:00:00","PriceArea":"DK1","DayAheadPriceDKK":700.1,"DayAheadPriceEUR":93.8},
        {"TimeUTC":"2025-10-01T22:00:00","TimeDK":"2025-10-02T00:00:00","PriceArea":"DK2","DayAheadPriceDKK":1.0,"DayAheadPriceEUR":1.0}]}"#;
    let q = energidataservice::parse(rest, "DK1", "EUR").unwrap();
    assert_eq!(q.slots.len(), 2);
    assert_eq!(
        q.slots[0],
        Slot {
            start: t("2025-10-01T22:00:00Z"),
            end: t("2025-10-01T22:15:00Z"),
            price: 93.8
        }
    );
    assert_eq!(q.slots[1].price, -0.47);
    assert_eq!(q.slots[1].end, t("2025-10-01T22:30:00Z"));
}

#[test]
fn nordpool_hourly_with_negative_prices() {
    let body = fixture("nordpool/DayAheadPrices_N2EX_UK_NO2_GBP_2025-05-31.json");
    let uk = nordpool::parse(&body, "UK", "GBP").unwrap();
    assert_eq!((uk.slots.len(), uk.currency.as_str()), (24, "GBP"));
    assert_contiguous(&uk);
    assert_eq!(at(&uk, "2025-05-30T22:00:00Z").price, 87.78);
    assert_eq!(at(&uk, "2025-05-31T11:00:00Z").price, -8.11);
    assert_eq!(
        at(
            &nordpool::parse(&body, "NO2", "GBP").unwrap(),
            "2025-05-31T11:00:00Z"
        )
        .price,
        7.97
    );
    assert!(matches!(
        nordpool::parse(&body, "SE3", "GBP"),
        Err(SourceError::Malformed(_))
    ));
}

#[test]
fn nordpool_15_minute_indices() {
    let q = nordpool::parse(
        &fixture("nordpool/DayAheadPriceIndices_SE3_PT15M_SEK_2025-10-01.json"),
        "SE3",
        "EUR",
    )
    .unwrap();
    assert_eq!((q.slots.len(), q.currency.as_str()), (96, "SEK"));
    assert!(q
        .slots
        .iter()
        .all(|s| s.end - s.start == TimeDelta::minutes(15)));
    assert_eq!(at(&q, "2025-09-30T22:00:00Z").price, 556.68);
    assert_eq!(at(&q, "2025-10-01T10:30:00Z").price, 638.47);
    assert_eq!(q.end(), Some(t("2025-10-01T22:00:00Z")));
}

#[test]
fn tibber_today_and_tomorrow() {
    let q = tibber::parse(
        &fixture("tibber/priceInfo_hourly_today_tomorrow_2025-05-18.json"),
        "EUR",
    )
    .unwrap();
    assert_eq!((q.basis, q.slots.len()), (Basis::ConsumerPerKwh, 48));
    assert_contiguous(&q);
    // startsAt 2025-05-18T00:00+02:00.
    assert_eq!(q.slots[0].start, t("2025-05-17T22:00:00Z"));
    assert_eq!(q.slots[0].price, 0.3136);
    assert_eq!(at(&q, "2025-05-18T12:00:00Z").price, 0.1687);
    assert_eq!(q.end(), Some(t("2025-05-19T22:00:00Z")));
    let err = tibber::parse(r#"{"errors":[{"message":"invalid token"}]}"#, "EUR").unwrap_err();
    assert!(matches!(err, SourceError::Unauthorized(_)), "{err}");
}

#[test]
fn octopus_unit_rates_in_pence_incl_vat() {
    let body = fixture("octopus/standard-unit-rates_nonagile_sample.json");
    let q = octopus::parse(&body, t("2020-10-31T00:00:00Z"), t("2020-11-02T00:00:00Z")).unwrap();
    assert_eq!(
        (q.basis, q.currency.as_str()),
        (Basis::ConsumerPerKwh, "GBP")
    );
    assert_eq!(q.slots.len(), 2);
    // 19.383 p/kWh until 2020-11-01, then the open-ended 21.672, clipped.
    assert_eq!(
        q.slots[0],
        Slot {
            start: t("2020-10-31T00:00:00Z"),
            end: t("2020-11-01T00:00:00Z"),
            price: 0.19383
        }
    );
    assert_eq!(
        q.slots[1],
        Slot {
            start: t("2020-11-01T00:00:00Z"),
            end: t("2020-11-02T00:00:00Z"),
            price: 0.21672
        }
    );
}

#[test]
fn curve_mixes_hourly_and_quarter_hour_slots() {
    let hourly = entsoe::parse(&fixture(
        "entsoe/A44_DE-LU_PT60M+PT15M_2024-10-06_2024-10-07.xml",
    ))
    .unwrap();
    let quarter =
        entsoe::parse(&fixture("entsoe/A44_DE-LU_PT15M_2025-10-31_2025-11-01.xml")).unwrap();
    let mut slots = hourly.slots.clone();
    slots.extend(quarter.slots.iter().copied());
    let curve = PriceCurve::new("EUR", slots).unwrap();
    assert_eq!(curve.slots().len(), 240);
    assert_eq!(curve.price_at(t("2024-10-06T12:30:00Z")), Some(-0.01));
    assert_eq!(curve.price_at(t("2025-11-01T10:07:00Z")), Some(15.0));
    assert_eq!(curve.price_at(t("2025-01-01T00:00:00Z")), None);
    // Overlapping slots are refused.
    let mut bad = hourly.slots.clone();
    bad.push(Slot {
        start: t("2024-10-06T12:15:00Z"),
        end: t("2024-10-06T12:30:00Z"),
        price: 1.0,
    });
    assert!(PriceCurve::new("EUR", bad).is_err());
}

#[test]
fn cheapest_window_spans_mixed_slots() {
    let s = |a: &str, b: &str, p: f64| Slot {
        start: t(a),
        end: t(b),
        price: p,
    };
    let curve = PriceCurve::new(
        "EUR",
        vec![
            s("2025-10-01T00:00:00Z", "2025-10-01T01:00:00Z", 0.30),
            s("2025-10-01T01:00:00Z", "2025-10-01T01:15:00Z", 0.10),
            s("2025-10-01T01:15:00Z", "2025-10-01T01:30:00Z", 0.12),
            s("2025-10-01T01:30:00Z", "2025-10-01T02:30:00Z", 0.20),
        ],
    )
    .unwrap();
    let (start, mean) = curve
        .cheapest_window(t("2025-10-01T00:00:00Z"), TimeDelta::minutes(30))
        .unwrap();
    assert_eq!(start, t("2025-10-01T01:00:00Z"));
    assert!((mean - 0.11).abs() < 1e-12);
    assert!(curve
        .cheapest_window(t("2025-10-01T00:00:00Z"), TimeDelta::hours(3))
        .is_none());
}

/// The fleet polls unplugged cars that wait for a command more often while
/// the price now is among the cheapest share of the hours ahead, and
/// resumes that pace at the next cheap slot; unknown time counts for
/// nothing.
#[test]
fn cheap_now_is_among_the_cheapest_share_ahead() {
    let s = |h: u32, p: f64| Slot {
        start: t(&format!("2025-10-01T{h:02}:00:00Z")),
        end: t(&format!("2025-10-01T{:02}:00:00Z", h + 1)),
        price: p,
    };
    // 00-10: 0.30, 0.05, then 0.20 (ten hours)
    let mut slots = vec![s(0, 0.30), s(1, 0.05)];
    slots.extend((2..10).map(|h| s(h, 0.20)));
    let curve = PriceCurve::new("EUR", slots).unwrap();
    let at = |h: u32, m: u32| t(&format!("2025-10-01T{h:02}:{m:02}:00Z"));
    let ahead = TimeDelta::hours(10);
    // the cheapest hour: nothing ahead is cheaper
    assert!(curve.is_cheap_at(at(1, 30), ahead, 0.2));
    // a 0.20 hour with the 0.05 one behind it: nothing ahead is cheaper
    assert!(curve.is_cheap_at(at(2, 0), ahead, 0.2));
    // the dearest: 9 of 10 hours ahead are cheaper
    assert!(!curve.is_cheap_at(at(0, 0), ahead, 0.2));
    // ... unless the share is above 9/10
    assert!(curve.is_cheap_at(at(0, 0), ahead, 0.95));
    // no price now, or nothing known ahead
    assert!(!curve.is_cheap_at(at(10, 0), ahead, 0.2));
    assert!(!curve.is_cheap_at(t("2025-09-30T23:00:00Z"), ahead, 0.2));
    // the next cheap slot start after a dear instant, within a bound
    assert_eq!(
        curve.next_cheap_start(at(0, 10), at(2, 0), ahead, 0.2),
        Some(at(1, 0))
    );
    assert_eq!(
        curve.next_cheap_start(at(0, 10), at(0, 59), ahead, 0.2),
        None
    );
    // a slot start at the instant itself is not "next"
    assert_eq!(
        curve.next_cheap_start(at(1, 0), at(2, 0), ahead, 0.2),
        Some(at(2, 0))
    );
}

/// A period that ends before it starts wrapped to about 4.3 billion slots,
/// and one of a thousand years built as many (both found by fuzzing): each
/// is refused as malformed at once.
#[test]
fn entsoe_periods_of_absurd_length_are_refused() {
    let doc = |start: &str, end: &str| {
        format!(
            "<Publication_MarketDocument><TimeSeries><Period><timeInterval><start>{start}</start><end>{end}</end></timeInterval><resolution>PT60M</resolution><Point><position>1</position><price.amount>1</price.amount></Point></Period></TimeSeries></Publication_MarketDocument>"
        )
    };
    for (start, end) in [
        ("2025-11-27T23:00Z", "2025-11-26T23:00Z"),
        ("2025-11-27T23:00Z", "3025-11-27T23:00Z"),
        ("2025-11-27T23:00Z", "2025-11-27T23:00Z"),
    ] {
        let e = entsoe::parse(&doc(start, end)).unwrap_err();
        assert!(
            matches!(e, smartcharged::prices::SourceError::Malformed(ref m) if m.contains("slots long")),
            "{start}..{end}: {e}"
        );
    }
    assert!(entsoe::parse(&doc("2025-11-27T23:00Z", "2025-11-28T23:00Z")).is_ok());
}
