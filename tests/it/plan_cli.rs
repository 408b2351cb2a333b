//! `smartcharged plan` end to end: JSON in and out, batches, and exit code
//! 65 for bad requests.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use planner::{Plan, PlanRequest};

const REQUEST: &str = r#"{"now":"2024-03-01T17:23:00Z","deadline":"2024-03-02T07:00:00Z",
 "battery_kwh":75.0,"soc_percent":30.0,"target_percent":80.0,
 "max_power_kw":11.0,"efficiency":0.9,
 "min_soc_percent":0.0,"max_blocks":null,"min_block_minutes":null,
 "charge_limit_percent":null,"opportunistic_price":null,
 "prices":[
  {"start":"2024-03-01T17:00:00Z","end":"2024-03-01T18:00:00Z","price_per_kwh":0.2134},
  {"start":"2024-03-01T18:00:00Z","end":"2024-03-01T22:00:00Z","price_per_kwh":0.25},
  {"start":"2024-03-01T22:00:00Z","end":"2024-03-02T01:00:00Z","price_per_kwh":0.11},
  {"start":"2024-03-02T01:00:00Z","end":"2024-03-02T03:00:00Z","price_per_kwh":0.19},
  {"start":"2024-03-02T03:00:00Z","end":"2024-03-02T07:00:00Z","price_per_kwh":0.14}]}"#;

fn smartcharged(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smartcharged"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run smartcharged");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn one_line(req: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(req).expect("json");
    v.to_string()
}

#[test]
fn json_plan_round_trips_and_equals_the_library() {
    let out = smartcharged(&["plan", "--request", "-", "--json"], REQUEST);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let plan: Plan = serde_json::from_str(text.trim()).expect("a plan");
    let req = PlanRequest::from_json(REQUEST).expect("valid");
    assert_eq!(plan, planner::plan(&req).expect("plans"));
    // 228 minutes: the 3 cheapest hours, then 48 minutes at 0.14 as late
    // as possible
    assert!(plan.feasible);
    assert_eq!(plan.charge_minutes, 228);
    assert_eq!(plan.blocks.len(), 2);
    assert_eq!(
        plan.blocks[0].start.to_rfc3339(),
        "2024-03-01T22:00:00+00:00"
    );
    assert_eq!(plan.blocks[0].end.to_rfc3339(), "2024-03-02T01:00:00+00:00");
    assert_eq!(
        plan.blocks[1].start.to_rfc3339(),
        "2024-03-02T06:12:00+00:00"
    );
    assert_eq!(plan.blocks[1].end.to_rfc3339(), "2024-03-02T07:00:00+00:00");
    // the output is the documented shape
    let v: serde_json::Value = serde_json::from_str(text.trim()).expect("json");
    for key in [
        "feasible",
        "charge_minutes",
        "energy_kwh",
        "cost",
        "asap_cost",
        "blocks",
        "warnings",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn chart_shows_blocks_and_savings() {
    let path = std::env::temp_dir().join(format!("plan-cli-{}.json", std::process::id()));
    std::fs::write(&path, REQUEST).expect("write request");
    let out = smartcharged(
        &["plan", "--request", path.to_str().expect("utf-8 path")],
        "",
    );
    std::fs::remove_file(&path).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        text.contains("◀ 180 min") && text.contains("◀ 48 min"),
        "{text}"
    );
    assert!(text.contains("saving"), "{text}");
    assert!(text.contains("at once"), "{text}");
    assert!(text.contains("(UTC)"), "{text}");
}

/// People read local times: the chart shows them in the zone it names;
/// JSON stays UTC.
#[test]
fn chart_times_are_local_in_the_zone_given() {
    let utc = smartcharged(&["plan", "--request", "-"], REQUEST);
    let local = smartcharged(
        &["plan", "--request", "-", "--time-zone", "Europe/Berlin"],
        REQUEST,
    );
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let (utc, local) = (
        String::from_utf8(utc.stdout).unwrap(),
        String::from_utf8(local.stdout).unwrap(),
    );
    assert!(local.contains("(Europe/Berlin)"), "{local}");
    // Winter: Berlin is UTC+1, so the first slot row moves one hour on.
    let first_row = |t: &str| t.lines().nth(2).unwrap().to_string();
    let (u, l) = (first_row(&utc), first_row(&local));
    let hour = |row: &str| row[6..8].parse::<u32>().unwrap();
    assert_eq!((hour(&u) + 1) % 24, hour(&l), "{u} / {l}");
    let bad = smartcharged(
        &["plan", "--request", "-", "--time-zone", "Mars/Olympus"],
        REQUEST,
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn batch_prints_one_plan_per_line() {
    let base = one_line(REQUEST);
    let limited = base.replace("\"max_blocks\":null", "\"max_blocks\":1");
    let input = format!("{base}\n{limited}\n\n{base}\n");
    let out = smartcharged(&["plan", "--batch", "-"], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let plans: Vec<Plan> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a plan per line"))
        .collect();
    assert_eq!(plans.len(), 3);
    assert_eq!(plans[0], plans[2]);
    assert_eq!(plans[0].blocks.len(), 2);
    assert_eq!(plans[1].blocks.len(), 1);
    assert!(plans[1].cost >= plans[0].cost);
}

#[test]
fn bad_requests_exit_65_naming_the_field() {
    let base = one_line(REQUEST);
    let cases = [
        (
            base.replace("\"battery_kwh\":75.0", "\"battery_kwh\":-75.0"),
            "battery_kwh",
        ),
        (
            base.replace(
                "\"deadline\":\"2024-03-02T07:00:00Z\"",
                "\"deadline\":\"2024-03-01T07:00:00Z\"",
            ),
            "deadline",
        ),
        (
            base.replace(
                "\"start\":\"2024-03-02T01:00:00Z\"",
                "\"start\":\"2024-03-01T20:00:00Z\"",
            ),
            "prices[3].start",
        ),
        (
            base.replace("\"efficiency\":0.9", "\"efficiency\":NaN"),
            "efficiency",
        ),
        (
            base.replace("\"battery_kwh\":75.0", "\"battery_kwh\":1e309"),
            "battery_kwh",
        ),
        (
            base.replace("\"efficiency\":0.9", "\"efficiency\":5e-324"),
            "efficiency",
        ),
        (
            base.replace("\"soc_percent\":30.0", "\"soc_percent\":\"thirty\""),
            "soc_percent",
        ),
        ("not json".to_string(), "request"),
    ];
    for (input, field) in cases {
        let out = smartcharged(&["plan", "--request", "-", "--json"], &input);
        assert_eq!(
            out.status.code(),
            Some(65),
            "{field}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{field} not named in: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // in a batch, the line is named too
    let bad = base.replace("\"battery_kwh\":75.0", "\"battery_kwh\":0");
    let out = smartcharged(&["plan", "--batch", "-"], &format!("{base}\n{bad}\n"));
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("battery_kwh"),
        "{err}"
    );
}

/// Two cars of 11 and 7.4 kW on an 11 kW connection and one 3.7 kW car:
/// the 11 kW car never charges together with another.
const SITE: &str = r#"{"now":"2024-03-01T17:23:00Z","site_limit_kw":11.0,
 "prices":[
  {"start":"2024-03-01T17:00:00Z","end":"2024-03-01T18:00:00Z","price_per_kwh":0.2134},
  {"start":"2024-03-01T18:00:00Z","end":"2024-03-01T22:00:00Z","price_per_kwh":0.25},
  {"start":"2024-03-01T22:00:00Z","end":"2024-03-02T01:00:00Z","price_per_kwh":0.11},
  {"start":"2024-03-02T01:00:00Z","end":"2024-03-02T03:00:00Z","price_per_kwh":0.19},
  {"start":"2024-03-02T03:00:00Z","end":"2024-03-02T07:00:00Z","price_per_kwh":0.14}],
 "vehicles":[
  {"id":"blue","deadline":"2024-03-02T07:00:00Z","battery_kwh":75.0,"soc_percent":40.0,
   "target_percent":80.0,"max_power_kw":11.0,"efficiency":1.0},
  {"id":"red","deadline":"2024-03-02T06:00:00Z","battery_kwh":60.0,"soc_percent":50.0,
   "target_percent":80.0,"max_power_kw":7.4,"efficiency":1.0},
  {"id":"van","deadline":"2024-03-02T05:00:00Z","battery_kwh":40.0,"soc_percent":50.0,
   "target_percent":70.0,"max_power_kw":3.7,"efficiency":1.0}]}"#;

#[test]
fn site_plan_json_holds_the_limit_and_equals_the_library() {
    for args in [
        &["plan", "--site", "--request", "-", "--json"][..],
        // a request with vehicles is a site request without the flag too
        &["plan", "--request", "-", "--json"][..],
    ] {
        let out = smartcharged(args, SITE);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let plan: planner::SitePlan = serde_json::from_str(text.trim()).expect("a site plan");
        let req = planner::SiteRequest::from_json(SITE).expect("valid");
        // the same text as the library's plan (floats read back from JSON
        // may differ in the last bit)
        let lib = planner::plan_site(&req).expect("plans");
        assert_eq!(text.trim(), serde_json::to_string(&lib).expect("json"));
        assert!(plan.feasible && plan.exact);
        assert!(plan.peak_kw() <= 11.0);
        // the documented shape
        let v: serde_json::Value = serde_json::from_str(text.trim()).expect("json");
        for key in ["feasible", "cost", "vehicles", "load"] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
        for key in ["id", "feasible", "blocks", "shortfall_kwh"] {
            assert!(v["vehicles"][0].get(key).is_some(), "{key} missing");
        }
        for key in ["start", "end", "energy_kwh", "cost"] {
            assert!(
                v["vehicles"][0]["blocks"][0].get(key).is_some(),
                "{key} missing"
            );
        }
    }
}

#[test]
fn site_chart_shows_every_vehicle_and_the_load() {
    let out = smartcharged(&["plan", "--site", "--request", "-"], SITE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    for id in ["blue ", "red ", "van ", "load "] {
        assert!(
            text.lines().any(|l| l.starts_with(id)),
            "no {id} row:\n{text}"
        );
    }
    assert!(text.contains("of 11 kW"), "{text}");
    assert!(text.contains("exact    the cheapest joint plan"), "{text}");
}

#[test]
fn bad_site_requests_exit_65_naming_the_field() {
    for (from, to, field) in [
        (
            r#""site_limit_kw":11.0"#,
            r#""site_limit_kw":-1"#,
            "site_limit_kw",
        ),
        (
            r#""max_power_kw":7.4"#,
            r#""max_power_kw":"fast""#,
            "vehicles[1].max_power_kw",
        ),
        (r#""id":"van""#, r#""id":"red""#, "vehicles[2].id"),
        (
            r#""soc_percent":40.0"#,
            r#""soc_percent":140.0"#,
            "vehicles[0].soc_percent",
        ),
    ] {
        let bad = SITE.replace(from, to);
        assert_ne!(bad, SITE);
        let out = smartcharged(&["plan", "--site", "--request", "-", "--json"], &bad);
        assert_eq!(out.status.code(), Some(65), "{field}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{field} not named: {err}");
    }
}
