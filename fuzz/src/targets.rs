//! The fuzz targets: one function per entry point that takes text from
//! outside, each run on arbitrary bytes.
//!
//! A target calls the library exactly as the daemon does with a body, a
//! config file or a request it was handed, then checks what the entry
//! point promises of its result (slots sorted and finite, lifetimes
//! clamped, plan numbers finite, errors located in the file). A panic,
//! a failed check, a hang or a runaway allocation is a finding.
//!
//! This file is compiled twice: by the fuzz binaries in `fuzz/` (through
//! the `smartcharged_fuzz` library) and by `tests/fuzz_regressions.rs`,
//! which replays every input kept in `fuzz/regressions/<target>/` through
//! the same function in the normal test suite. So it may use only what the
//! `smartcharged` package itself depends on.

use std::path::Path;

use chrono::{DateTime, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use serde_json::Value;
use smartcharged::config::{Config, ConfigError};
use smartcharged::enode::auth::{token_answer, token_error_answer};
use smartcharged::enode::dto;
use smartcharged::enode::error::{Problem, RetryAfter};
use smartcharged::enode::webhook::{events, WebhookError, MAX_EVENTS};
use smartcharged::limits;
use smartcharged::model::{ChargingReason, Vehicle, VehicleEventKind, WebhookEvent};
use smartcharged::prices::tariff::Tariff;
use smartcharged::prices::tou::{TouSchedule, Window};
use smartcharged::prices::{self, Quote, SourceError};
use smartcharged::secret::Secret;

/// A fuzz target: runs one input, panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/run` and the replay test know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("enode_dto", enode_dto),
    ("enode_problem", enode_problem),
    ("enode_token", enode_token),
    ("prices_awattar", prices_awattar),
    ("prices_entsoe", prices_entsoe),
    ("prices_nordpool", prices_nordpool),
    ("prices_tibber", prices_tibber),
    ("prices_energidataservice", prices_energidataservice),
    ("prices_octopus", prices_octopus),
    ("prices_file", prices_file),
    ("plan_request", plan_request),
    ("webhook", webhook),
];

/// The target called `name`, if there is one.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// A fixed "now" for entry points that take one (a Tuesday in the middle
/// of the shared price series, away from DST changes).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 11, 10, 0, 0).unwrap()
}

/// Text as the daemon sees it: bodies and files are read as UTF-8, and
/// anything else is refused before a parser sees it.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Whether an outside string was clipped as [`limits::clip`] promises.
fn clipped(s: &str) -> bool {
    s.len() <= limits::TEXT_MAX + '…'.len_utf8() && !s.chars().any(char::is_control)
}

// ---------------------------------------------------------------- config

/// A config file: TOML text -> validated [`Config`]. The file "lives" in a
/// directory that does not exist, so relative secret and price files are
/// never found; every environment variable is set, except the systemd
/// credentials directory (which would send the loader to the disk).
pub fn config(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let env = |name: &str| (name != "CREDENTIALS_DIRECTORY").then(|| "fuzz-value".to_string());
    let path = Path::new("/nonexistent-fuzz-dir/smartcharged.toml");
    match Config::parse(text, path, &env) {
        Ok(c) => {
            let _ = c.summary();
            let within = |b: &limits::Bounds, d| {
                assert!(b.check(d).is_ok(), "{} {d:?} out of its range", b.key)
            };
            within(&limits::REQUEST_TIMEOUT, c.enode.request_timeout);
            within(&limits::TOKEN_TIMEOUT, c.enode.token_timeout);
            within(&limits::REFRESH_LEAD, c.tokens.refresh_lead);
            within(&limits::REFRESH_JITTER, c.tokens.refresh_jitter);
            within(&limits::LINK_TIMEOUT, c.tokens.link_timeout);
            within(&limits::JOURNAL_RETENTION, c.store.journal_retention);
            for u in [&c.enode.api_url, &c.enode.auth_url, &c.enode.token_url] {
                assert!(matches!(u.scheme(), "http" | "https"), "{u}");
            }
        }
        Err(ConfigError::Invalid { line, column, .. }) => {
            // The location points into the text (or just past its end).
            let lines = text.split('\n').count();
            assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}");
            assert!(column >= 1, "column {column}");
        }
        Err(_) => {}
    }
}

// ----------------------------------------------------------------- enode

/// An Enode API answer: the JSON body read as each endpoint's DTO reader
/// reads it (vehicles, one vehicle, charging locations, the user, a link
/// state). Whatever the body, the readers keep their promises: ids usable,
/// strings clipped, numbers finite.
pub fn enode_dto(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Some(vs) = dto::vehicles(&v) {
        vs.iter().for_each(check_vehicle);
    }
    if let Some(vehicle) = dto::vehicle(&v) {
        check_vehicle(&vehicle);
    }
    if let Some(ls) = dto::charging_locations(&v) {
        for l in ls {
            assert!(limits::enode_id_ok(&l.id), "location id {:?}", l.id);
            assert!(l.name.as_deref().is_none_or(clipped));
            assert!(l.latitude.is_none_or(f64::is_finite));
            assert!(l.longitude.is_none_or(f64::is_finite));
        }
    }
    if let Some(u) = dto::user_info(&v) {
        assert!(clipped(&u.id));
        assert!(u.linked_vendors.iter().all(|lv| clipped(&lv.vendor)));
    }
    if let Some(ls) = dto::link_state(&v) {
        assert!(ls.len() < limits::TEXT_MAX && !ls.chars().any(char::is_control));
    }
    if let Some(s) = v.as_str() {
        let _ = dto::parse_deadline(s);
    }
}

fn check_vehicle(v: &Vehicle) {
    assert!(limits::enode_id_ok(&v.id), "vehicle id {:?}", v.id);
    if let Some(id) = &v.charging_location_id {
        assert!(limits::enode_id_ok(id), "charging location id {id:?}");
    }
    if let Some(cs) = &v.charge_state {
        for n in [
            cs.battery_level,
            cs.battery_capacity_kwh,
            cs.charge_limit,
            cs.charge_rate_kw,
            cs.charge_time_remaining_min,
            cs.range_km,
        ]
        .into_iter()
        .flatten()
        {
            assert!(n.is_finite(), "charge state number {n}");
        }
        assert!(cs.reasons.len() <= 32, "{} reasons kept", cs.reasons.len());
        for r in &cs.reasons {
            if let ChargingReason::Other(s) = r {
                assert!(clipped(s), "reason {s:?}");
            }
        }
    }
    if let Some(i) = &v.information {
        for s in [&i.id, &i.brand, &i.model].into_iter().flatten() {
            assert!(clipped(s), "information {s:?}");
        }
    }
}

/// An Enode error answer: the problem body of a 4xx/5xx (every status a
/// server may send) and, from the same bytes, a Retry-After header value.
pub fn enode_problem(data: &[u8]) {
    let (status, body) = match data.split_first() {
        Some((&b, rest)) => (400 + u16::from(b) % 200, rest),
        None => (500, data),
    };
    let status = reqwest::StatusCode::from_u16(status).expect("400..600 is a status");
    let p = Problem::parse(status, body);
    assert_eq!(p.status, status.as_u16());
    for s in [&p.problem_type, &p.title, &p.detail].into_iter().flatten() {
        assert!(clipped(s), "problem text of {} bytes", s.len());
    }
    let line = p.to_string();
    assert!(
        line.len() <= 3 * (limits::TEXT_MAX + 3) + 32,
        "{} bytes",
        line.len()
    );

    if let Some(value) = text(body) {
        if let Some(r) = RetryAfter::parse(value, now()) {
            assert!(r.delay <= limits::RETRY_AFTER_MAX, "{:?}", r.delay);
            assert!(r.not_before >= now());
        }
    }
}

/// A token endpoint's answer: the same bytes read as a 2xx token answer
/// (a refresh, so the old refresh token is at hand) and as an OAuth error
/// body. A usable answer yields a clamped lifetime and never loses the
/// refresh token; one with an empty access token is refreshed at once
/// (the shortest lifetime).
pub fn enode_token(data: &[u8]) {
    let scopes = vec!["offline_access".to_string()];
    let old = Secret::new("old-refresh-token");
    match token_answer(data, now(), Some(&old), &scopes) {
        Ok(t) => {
            let lifetime = (t.expires_at - now()).to_std().expect("expiry after now");
            assert!(
                (limits::TOKEN_LIFETIME_MIN..=limits::TOKEN_LIFETIME_MAX).contains(&lifetime),
                "lifetime {lifetime:?}"
            );
            assert!(t.refresh_token.is_some(), "the refresh token was dropped");
            assert!(
                !t.access_token.expose().trim().is_empty()
                    || lifetime == limits::TOKEN_LIFETIME_MIN,
                "an empty access token kept for {lifetime:?}"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let e = token_error_answer(data);
    assert!(e.to_string().len() <= 2 * (limits::TEXT_MAX + 3) + 128);
}

// ---------------------------------------------------------------- prices

/// What every provider's quote promises, and what the tariff formula
/// (with a time-of-use grid fee, as configs have) makes of it.
fn check_quote(result: Result<Quote, SourceError>) {
    let q = match result {
        Ok(q) => q,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for s in &q.slots {
        assert!(s.start < s.end, "empty slot {s:?}");
        assert!(s.end - s.start <= limits::PRICE_SLOT_MAX, "long slot {s:?}");
        assert!(s.price.is_finite(), "price {}", s.price);
    }
    for w in q.slots.windows(2) {
        assert!(w[0].end <= w[1].start, "overlap {w:?}");
    }
    if let (Some(first), Some(last)) = (q.slots.first(), q.slots.last()) {
        assert!(last.end - first.start <= limits::PRICE_SPAN_MAX, "span");
    }
    let curve = tariff().apply(&q);
    for w in curve.slots().windows(2) {
        assert!(w[0].end <= w[1].start, "curve overlap {w:?}");
    }
}

/// A tariff as a German config writes it: VAT, a markup and a grid fee
/// that is lower at night (local time, so DST matters).
fn tariff() -> Tariff {
    let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    Tariff {
        multiplier: 1.0,
        markup_per_kwh: 0.02,
        vat: 0.19,
        grid_fee: TouSchedule {
            tz: chrono_tz::Europe::Berlin,
            windows: vec![Window {
                days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed],
                from: t(22),
                to: t(6),
                price: 0.05,
            }],
            default: Some(0.09),
        },
        currency: "EUR".into(),
    }
}

/// An aWATTar marketdata answer.
pub fn prices_awattar(data: &[u8]) {
    let Some(body) = text(data) else { return };
    check_quote(prices::awattar::parse(body));
}

/// An ENTSO-E A44 document.
pub fn prices_entsoe(data: &[u8]) {
    let Some(body) = text(data) else { return };
    check_quote(prices::entsoe::parse(body));
}

/// A Nord Pool day-ahead answer, for the areas and currencies of the
/// fixtures and one the answer does not name.
pub fn prices_nordpool(data: &[u8]) {
    let Some(body) = text(data) else { return };
    for (area, currency) in [("SE3", "SEK"), ("NO2", "GBP"), ("DE-LU", "EUR")] {
        check_quote(prices::nordpool::parse(body, area, currency));
    }
}

/// A Tibber `priceInfo` answer.
pub fn prices_tibber(data: &[u8]) {
    let Some(body) = text(data) else { return };
    check_quote(prices::tibber::parse(body, "EUR"));
}

/// An Energi Data Service answer: JSON (REST or the retired GraphQL) and
/// the CSV export, for two areas.
pub fn prices_energidataservice(data: &[u8]) {
    let Some(body) = text(data) else { return };
    for (area, currency) in [("DK2", "DKK"), ("SE3", "EUR")] {
        check_quote(prices::energidataservice::parse(body, area, currency));
        check_quote(prices::energidataservice::parse_csv(body, area, currency));
    }
}

/// An Octopus unit-rates answer, for the two days a fetch asks for.
pub fn prices_octopus(data: &[u8]) {
    let Some(body) = text(data) else { return };
    let from = now();
    check_quote(prices::octopus::parse(
        body,
        from,
        from + TimeDelta::days(2),
    ));
}

/// A price file, as CSV (either header) and as JSON.
pub fn prices_file(data: &[u8]) {
    let Some(body) = text(data) else { return };
    for name in ["prices.csv", "prices.json"] {
        check_quote(prices::file::parse(Path::new(name), body, "EUR"));
    }
}

// --------------------------------------------------------------- planner

/// A plan request as `smartcharged plan` reads it: JSON -> validated
/// request -> plan. Every number of a plan is finite and its blocks lie
/// inside the horizon, in order.
pub fn plan_request(data: &[u8]) {
    let Some(json) = text(data) else { return };
    let Ok(req) = planner::PlanRequest::from_json(json) else {
        return;
    };
    let Ok(plan) = planner::Planner::new().plan(&req) else {
        return;
    };
    for n in [
        plan.energy_kwh,
        plan.cost,
        plan.asap_cost,
        plan.shortfall_kwh,
    ] {
        assert!(n.is_finite(), "plan number {n}");
    }
    for b in &plan.blocks {
        assert!(b.start < b.end, "empty block {b:?}");
        assert!(
            b.start >= req.now && b.end <= req.deadline,
            "block {b:?} outside the horizon"
        );
        assert!(
            b.energy_kwh.is_finite() && b.cost.is_finite(),
            "block {b:?}"
        );
    }
    for w in plan.blocks.windows(2) {
        assert!(w[0].end <= w[1].start, "blocks overlap: {w:?}");
    }
}

// --------------------------------------------------------------- webhook

/// The secret the `webhook` target signs with.
const WEBHOOK_SECRET: &[u8] = b"fuzz-webhook-secret";

/// A webhook delivery: the first line is the `X-Enode-Signature` header,
/// the rest the body. The signature check must accept the body's own
/// signature and refuse the header unless it is that signature (hex in
/// either case). The event reader runs on the body whether or not it is
/// signed (the daemon reaches it only signed; forging the HMAC would only
/// slow the search): at most `MAX_EVENTS` events, every vehicle event
/// with a vehicle id in the id grammar, a user id and names clipped, the
/// reported numbers finite.
pub fn webhook(data: &[u8]) {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let own = smartcharged::webhooks::sign(WEBHOOK_SECRET, body);
    assert!(smartcharged::webhooks::verify(WEBHOOK_SECRET, body, Some(own.as_bytes())).is_ok());
    if smartcharged::webhooks::verify(WEBHOOK_SECRET, body, Some(header)).is_ok() {
        assert!(
            header.eq_ignore_ascii_case(own.as_bytes()),
            "accepted {header:?} for a body signed {own}"
        );
    }
    match events(body) {
        Ok(list) => {
            assert!(list.len() <= MAX_EVENTS);
            for e in list {
                match e {
                    WebhookEvent::Vehicle(v) => {
                        assert!(limits::enode_id_ok(&v.user), "user {:?}", v.user);
                        match &v.kind {
                            VehicleEventKind::Updated(u) | VehicleEventKind::Discovered(u) => {
                                check_vehicle(&u.vehicle)
                            }
                            VehicleEventKind::Deleted(id) => {
                                assert!(limits::enode_id_ok(id), "vehicle id {id:?}")
                            }
                        }
                    }
                    WebhookEvent::Ignored(name) => assert!(name.len() <= 2 * limits::TEXT_MAX),
                    WebhookEvent::Test => {}
                }
            }
        }
        Err(WebhookError::TooMany(n)) => assert!(n > MAX_EVENTS),
        Err(WebhookError::NotEvents) => {}
    }
}
