//! Policy resolution, validation errors with their positions, deadlines
//! across DST, and requests built from real prices.

use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Europe::Berlin;

use super::*;
use crate::config::{Config, ConfigError};
use crate::model::{ChargeState, SmartChargingPolicy, Vehicle};
use crate::prices::tariff::Tariff;
use crate::prices::{PriceCurve, Slot};

const ENODE: &str = "[enode]\nclient_id = \"c\"\nclient_secret = \"s\"\n";

fn no_env(_: &str) -> Option<String> {
    None
}

/// A whole config file: `[enode]` (3 lines) then `rest`.
fn parse(rest: &str) -> Result<Config, ConfigError> {
    Config::parse(
        &format!("{ENODE}{rest}"),
        Path::new("/etc/smartcharged/p.toml"),
        &no_env,
    )
}

fn policy(rest: &str) -> PolicyConfig {
    match parse(rest) {
        Ok(c) => c.policy,
        Err(e) => panic!("{e}"),
    }
}

/// Line, column and "message; help" of an invalid config.
fn invalid(rest: &str) -> (usize, usize, String) {
    match parse(rest) {
        Err(ConfigError::Invalid {
            line,
            column,
            message,
            help,
            ..
        }) => (
            line,
            column,
            format!("{message}; {}", help.unwrap_or_default()),
        ),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("accepted:\n{rest}"),
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

#[test]
fn no_section_gives_built_in_defaults_in_utc() {
    let p = policy("").for_vehicle("u", "v");
    assert_eq!(p, VehiclePolicy::defaults(Tz::UTC));
    assert_eq!(p, PolicyConfig::default().for_vehicle("u", "v"));
    assert_eq!(p.target_percent, 80.0);
    assert_eq!(p.deadlines, [hm(7, 0); 7]);
    assert_eq!(p.efficiency, 0.9);
    assert_eq!(p.min_soc_percent, 0.0);
    assert_eq!((p.max_blocks, p.min_block_minutes), (None, None));
    assert_eq!((p.opportunistic_price, p.max_power_kw), (None, None));
    assert!(!p.take_over_enode_smart_charging);
    assert!(!p.use_enode_deadline);
    assert!(p.suspend_on_manual_override);
    assert!(p.charging_locations.is_empty());
    assert_eq!(p.replan_soc_drift_percent, 5.0);
    assert_eq!(p.poll_fast, Duration::from_secs(1800));
    assert_eq!(p.poll_slow, Duration::from_secs(1800));
    assert_eq!(p.tie_break, TieBreak::Later);
}

#[test]
fn time_zone_defaults_to_the_prices_zone_and_can_be_overridden() {
    let prices = "[prices]\nprovider = \"awattar\"\ntime_zone = \"Europe/Berlin\"\n";
    let c = policy(prices);
    assert_eq!(c.for_vehicle("u", "v").time_zone, Berlin);
    let c = policy(&format!(
        "{prices}[policy]\ntime_zone = \"Europe/Helsinki\"\n\
         [[policy.users]]\nid = \"tokyo\"\ntime_zone = \"Asia/Tokyo\"\n"
    ));
    assert_eq!(
        c.for_vehicle("u", "v").time_zone,
        chrono_tz::Europe::Helsinki
    );
    assert_eq!(
        c.for_vehicle("tokyo", "v").time_zone,
        chrono_tz::Asia::Tokyo
    );
}

#[test]
fn vehicle_beats_user_beats_global_beats_default() {
    let c = policy(
        r#"
[policy]
target_percent = 70
max_blocks = 4
poll_fast = "1m"

[[policy.users]]
id = "anna"
target_percent = 75
max_blocks = 2
efficiency = 0.85
charging_locations = ["home-anna"]

[[policy.vehicles]]
id = "car-1"
target_percent = 90.5
tie_break = "earlier"
take_over_enode_smart_charging = true
"#,
    );
    let p = c.for_vehicle("anna", "car-1");
    assert_eq!(p.target_percent, 90.5, "vehicle");
    assert_eq!(p.max_blocks, Some(2), "user");
    assert_eq!(p.efficiency, 0.85, "user");
    assert_eq!(p.poll_fast, Duration::from_secs(60), "global");
    assert_eq!(p.poll_slow, Duration::from_secs(1800), "default");
    assert_eq!(p.tie_break, TieBreak::Earlier);
    assert!(p.take_over_enode_smart_charging);
    assert_eq!(&*p.charging_locations, ["home-anna".to_owned()]);

    let p = c.for_vehicle("anna", "car-2");
    assert_eq!((p.target_percent, p.max_blocks), (75.0, Some(2)));
    assert_eq!(p.tie_break, TieBreak::Later);

    let p = c.for_vehicle("ben", "car-3");
    assert_eq!((p.target_percent, p.max_blocks), (70.0, Some(4)));
    assert_eq!(p.efficiency, 0.9);
    assert!(p.charging_locations.is_empty());

    // a vehicle override follows the vehicle whoever links it
    assert_eq!(c.for_vehicle("ben", "car-1").target_percent, 90.5);
    assert_eq!(c.global(), &c.for_vehicle("nobody", "nothing"));
}

#[test]
fn weekday_deadlines_layer_per_level() {
    let c = policy(
        r#"
[policy]
deadline = "07:00"

[policy.deadlines]
sat = "09:30"
sun = "10:00"

[[policy.users]]
id = "early"
deadline = "06:00"
deadlines = { fri = "05:15" }

[[policy.vehicles]]
id = "weekend-car"
deadlines = { sun = "11:45" }
"#,
    );
    let g = c.for_vehicle("u", "v");
    assert_eq!(g.deadline_on(Weekday::Mon), hm(7, 0));
    assert_eq!(g.deadline_on(Weekday::Fri), hm(7, 0));
    assert_eq!(g.deadline_on(Weekday::Sat), hm(9, 30));
    assert_eq!(g.deadline_on(Weekday::Sun), hm(10, 0));

    // a level's `deadline` replaces every day of the wider levels
    let e = c.for_vehicle("early", "v");
    assert_eq!(e.deadline_on(Weekday::Mon), hm(6, 0));
    assert_eq!(e.deadline_on(Weekday::Fri), hm(5, 15));
    assert_eq!(e.deadline_on(Weekday::Sat), hm(6, 0));
    assert_eq!(e.deadline_on(Weekday::Sun), hm(6, 0));

    // a level with only some days keeps the others
    let w = c.for_vehicle("early", "weekend-car");
    assert_eq!(w.deadline_on(Weekday::Sun), hm(11, 45));
    assert_eq!(w.deadline_on(Weekday::Sat), hm(6, 0));
    let w = c.for_vehicle("u", "weekend-car");
    assert_eq!(w.deadline_on(Weekday::Sun), hm(11, 45));
    assert_eq!(w.deadline_on(Weekday::Sat), hm(9, 30));
    assert_eq!(w.deadline_on(Weekday::Tue), hm(7, 0));
}

#[test]
fn every_setting_can_be_overridden_per_vehicle() {
    let c = policy(
        r#"
[[policy.vehicles]]
id = "v"
target_percent = 100
deadline = "05:45"
time_zone = "America/New_York"
min_soc_percent = 20
max_blocks = 3
min_block_minutes = 30
min_pause_minutes = 20
finish_by_departure_minutes = 45
opportunistic_price = -0.01
efficiency = 1
max_power_kw = 7.4
take_over_enode_smart_charging = true
use_enode_deadline = true
charging_locations = ["a", "b"]
suspend_on_manual_override = false
replan_soc_drift_percent = 2.5
poll_fast = "30s"
poll_slow = "1h"
tie_break = "earlier"
"#,
    );
    let p = c.for_vehicle("u", "v");
    let expected = VehiclePolicy {
        target_percent: 100.0,
        deadlines: [hm(5, 45); 7],
        time_zone: chrono_tz::America::New_York,
        min_soc_percent: 20.0,
        max_blocks: Some(3),
        min_block_minutes: Some(30),
        min_pause_minutes: Some(20),
        finish_by_departure_minutes: Some(45),
        opportunistic_price: Some(-0.01),
        efficiency: 1.0,
        max_power_kw: Some(7.4),
        take_over_enode_smart_charging: true,
        use_enode_deadline: true,
        charging_locations: Arc::from(["a".to_owned(), "b".to_owned()]),
        suspend_on_manual_override: false,
        replan_soc_drift_percent: 2.5,
        poll_fast: Duration::from_secs(30),
        poll_slow: Duration::from_secs(3600),
        tie_break: TieBreak::Earlier,
    };
    assert_eq!(p, expected);
    assert_eq!(
        c.for_vehicle("u", "other"),
        VehiclePolicy::defaults(Tz::UTC)
    );
}

#[test]
fn charging_locations_gate_control() {
    let any = VehiclePolicy::defaults(Tz::UTC);
    assert!(any.allows_location(Some("home")));
    assert!(!any.allows_location(None), "not at a charging location");
    let home = VehiclePolicy {
        charging_locations: Arc::from(["home".to_owned()]),
        ..any
    };
    assert!(home.allows_location(Some("home")));
    assert!(!home.allows_location(Some("office")));
    assert!(!home.allows_location(None));
}

#[test]
fn bad_values_are_located() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "[policy]\ntime_zone = \"Europe/Berlln\"\n",
            (5, 13),
            "`Europe/Berlln` is not an IANA time zone",
        ),
        (
            "[policy]\ndeadline = \"7 am\"\n",
            (5, 12),
            "`7 am` is not a time of day",
        ),
        (
            "[policy]\ndeadline = \"24:00\"\n",
            (5, 12),
            "`24:00` is not a time of day",
        ),
        (
            "[policy.deadlines]\nsat = \"9:3x\"\n",
            (5, 7),
            "`9:3x` is not a time of day",
        ),
        (
            "[policy]\nefficiency = 0\n",
            (5, 14),
            "efficiency 0 is not in [0.05, 1]",
        ),
        (
            "[policy]\nefficiency = 1.2\n",
            (5, 14),
            "efficiency 1.2 is not in [0.05, 1]",
        ),
        (
            "[policy]\ntarget_percent = 101\n",
            (5, 18),
            "target_percent 101 is not between 0 and 100",
        ),
        (
            "[policy]\nmin_soc_percent = -5\n",
            (5, 19),
            "min_soc_percent -5 is not between 0 and 100",
        ),
        (
            "[policy]\nmax_blocks = 0\n",
            (5, 14),
            "max_blocks 0 is not between 1 and 16",
        ),
        (
            "[policy]\nmax_blocks = 17\n",
            (5, 14),
            "max_blocks 17 is not between 1 and 16",
        ),
        (
            "[policy]\nmin_block_minutes = 0\n",
            (5, 21),
            "min_block_minutes is zero",
        ),
        (
            "[policy]\nmax_power_kw = 0\n",
            (5, 16),
            "max_power_kw 0 is not in (0, 1000]",
        ),
        (
            "[policy]\nreplan_soc_drift_percent = 0\n",
            (5, 28),
            "replan_soc_drift_percent 0 is not in (0, 100]",
        ),
        (
            "[policy]\nopportunistic_price = 1e6\n",
            (5, 23),
            "opportunistic_price 1000000 is out of range",
        ),
        (
            "[policy]\npoll_fast = \"2 minutes\"\n",
            (5, 13),
            "bad duration",
        ),
        (
            "[policy]\npoll_slow = \"0s\"\n",
            (5, 13),
            "poll_slow 0s is out of range (30s to 1d)",
        ),
        (
            "[policy]\npoll_fast = \"100000000d\"\n",
            (5, 13),
            "poll_fast 100000000d is out of range (10s to 1h)",
        ),
        (
            "[policy]\npoll_slow = \"200000000000d\"\n",
            (5, 13),
            "poll_slow 200000000000d is out of range",
        ),
        (
            "[policy]\ntie_break = \"cheapest\"\n",
            (5, 13),
            "unknown tie_break `cheapest`",
        ),
        (
            "[policy]\ncharging_locations = [\"home\", \" \"]\n",
            (5, 31),
            "charging location id is empty",
        ),
        (
            "[[policy.users]]\nid = \"\"\n",
            (5, 6),
            "[[policy.users]] id is empty",
        ),
        (
            "[[policy.sites]]\ncharging_location = \"depot\"\nmax_power_kw = 0\n",
            (6, 16),
            "site max_power_kw 0 is not in (0, 100000]",
        ),
        (
            "[[policy.sites]]\ncharging_location = \"depot\"\nmax_power_kw = inf\n",
            (6, 16),
            "site max_power_kw inf is not in (0, 100000]",
        ),
        (
            "[[policy.sites]]\ncharging_location = \"  \"\nmax_power_kw = 11\n",
            (5, 21),
            "charging_location `  ` is not an Enode id",
        ),
        (
            "[[policy.sites]]\ncharging_location = \"a\\u0007b\"\nmax_power_kw = 11\n",
            (5, 21),
            "is not an Enode id",
        ),
        (
            "[[policy.sites]]\ncharging_location = \"depot\"\nmax_power_kw = 11\ntime_zone = \"Mars/Olympus\"\n",
            (7, 13),
            "`Mars/Olympus` is not an IANA time zone",
        ),
        (
            "[[policy.sites]]\ncharging_location = \"d\"\nmax_power_kw = 11\n\
             [[policy.sites]]\ncharging_location = \" d\"\nmax_power_kw = 22\n",
            (8, 21),
            "[[policy.sites]] charging_location `d` appears twice",
        ),
        (
            "[[policy.vehicles]]\nid = \"v1\"\nefficiency = 0\n",
            (6, 14),
            "efficiency 0 is not in [0.05, 1]",
        ),
        (
            "[[policy.users]]\nid = \"u\"\ndeadlines = { mon = \"noon\" }\n",
            (6, 21),
            "`noon` is not a time of day",
        ),
    ];
    for (text, at, needle) in cases {
        let (line, col, msg) = invalid(text);
        assert!(msg.contains(needle), "{text}: {msg}");
        assert_eq!((line, col), *at, "{text}: {msg}");
        assert!(!msg.contains("; ;"), "every error has help: {msg}");
    }
}

#[test]
fn sites_are_read_with_their_limit_and_zone() {
    let long = "x".repeat(crate::limits::ENODE_ID_MAX + 1);
    let (line, _, msg) = invalid(&format!(
        "[[policy.sites]]\ncharging_location = \"{long}\"\nmax_power_kw = 11\n"
    ));
    assert_eq!(line, 5, "{msg}");
    assert!(msg.contains("is not an Enode id"), "{msg}");
    let (line, _, msg) = invalid("[[policy.sites]]\ncharging_location = \"d\"\n");
    assert_eq!(line, 4, "{msg}");
    assert!(msg.contains("missing field `max_power_kw`"), "{msg}");
    let (_, _, msg) =
        invalid("[[policy.sites]]\ncharging_location = \"d\"\nmax_power_kw = 11\nlimit = 3\n");
    assert!(msg.contains("unknown field `limit`"), "{msg}");

    let p = policy(
        "[[policy.sites]]\ncharging_location = \"depot-1\"\nmax_power_kw = 22.5\n\
         time_zone = \"Europe/Berlin\"\n[[policy.sites]]\ncharging_location = \"home\"\n\
         max_power_kw = 11\n",
    );
    assert_eq!(p.site_count(), 2);
    let depot = p.site(Some("depot-1")).expect("configured");
    assert_eq!(depot.max_power_kw, 22.5);
    assert_eq!(depot.time_zone, Some(Berlin));
    assert_eq!(p.site(Some("home")).map(|s| s.time_zone), Some(None));
    assert!(p.site(Some("office")).is_none());
    assert!(p.site(None).is_none());
    assert_eq!(PolicyConfig::default().site_count(), 0);
}

#[test]
fn repeated_override_ids_are_rejected_at_the_second() {
    let (line, col, msg) = invalid(
        "[[policy.vehicles]]\nid = \"v1\"\n[[policy.vehicles]]\nid = \"v2\"\n\
         [[policy.vehicles]]\nid = \" v1\"\ntarget_percent = 60\n",
    );
    assert_eq!((line, col), (9, 6), "{msg}");
    assert!(
        msg.contains("[[policy.vehicles]] id `v1` appears twice"),
        "{msg}"
    );
    assert!(msg.contains("merge the two entries"), "{msg}");

    let (line, _, msg) = invalid("[[policy.users]]\nid = \"a\"\n[[policy.users]]\nid = \"a\"\n");
    assert_eq!(line, 7, "{msg}");
    assert!(
        msg.contains("[[policy.users]] id `a` appears twice"),
        "{msg}"
    );

    // the same id as a user and as a vehicle is fine: different tables
    policy("[[policy.users]]\nid = \"x\"\n[[policy.vehicles]]\nid = \"x\"\n");
}

#[test]
fn unknown_keys_are_rejected_with_a_hint() {
    let (line, col, msg) = invalid("[policy]\ntarget_percnt = 80\n");
    assert_eq!((line, col), (5, 1), "{msg}");
    assert!(msg.contains("unknown field `target_percnt`"), "{msg}");
    assert!(msg.contains("did you mean `target_percent`?"), "{msg}");

    let (line, _, msg) = invalid("[[policy.vehicles]]\nid = \"v\"\ndeadline_utc = \"05:00\"\n");
    assert_eq!(line, 6, "{msg}");
    assert!(msg.contains("unknown field `deadline_utc`"), "{msg}");

    let (line, _, msg) = invalid("[policy.deadlines]\nsatruday = \"09:00\"\n");
    assert_eq!(line, 5, "{msg}");
    assert!(msg.contains("unknown field `satruday`"), "{msg}");

    // overrides cannot nest
    let (line, _, msg) =
        invalid("[[policy.users]]\nid = \"u\"\n[[policy.users.vehicles]]\nid = \"v\"\n");
    assert!(line >= 6, "{msg}");
    assert!(msg.contains("unknown field `vehicles`"), "{msg}");

    let (_, _, msg) = invalid("[[policy.vehicles]]\ntarget_percent = 50\n");
    assert!(msg.contains("missing field `id`"), "{msg}");
}

/// A policy in Berlin with the given deadline every day.
fn berlin(deadline: NaiveTime) -> VehiclePolicy {
    VehiclePolicy {
        deadlines: [deadline; 7],
        ..VehiclePolicy::defaults(Berlin)
    }
}

#[test]
fn seven_stays_seven_local_across_both_dst_changes_of_2024() {
    let p = berlin(hm(7, 0));
    // evening before the spring-forward night: 07:00 CEST is 05:00 UTC
    assert_eq!(
        next_deadline(&p, None, utc(2024, 3, 30, 20, 0)),
        utc(2024, 3, 31, 5, 0)
    );
    // the evening before: still CET
    assert_eq!(
        next_deadline(&p, None, utc(2024, 3, 29, 20, 0)),
        utc(2024, 3, 30, 6, 0)
    );
    // evening before the fall-back night: 07:00 CET is 06:00 UTC
    assert_eq!(
        next_deadline(&p, None, utc(2024, 10, 26, 20, 0)),
        utc(2024, 10, 27, 6, 0)
    );
    assert_eq!(
        next_deadline(&p, None, utc(2024, 10, 25, 20, 0)),
        utc(2024, 10, 26, 5, 0)
    );
    // every evening of 2024: 07:00 local, 30 minutes to a day and a half ahead
    let mut now = utc(2024, 1, 1, 19, 0);
    while now.year() == 2024 {
        let d = next_deadline(&p, None, now);
        let local = d.with_timezone(&Berlin);
        assert_eq!(local.time(), hm(7, 0), "{now}");
        assert_eq!(
            local.date_naive(),
            (now + TimeDelta::days(1)).date_naive(),
            "{now}"
        );
        now += TimeDelta::hours(24);
    }
}

#[test]
fn a_deadline_in_the_spring_gap_moves_to_its_end_and_a_repeated_one_takes_the_first() {
    let p = berlin(hm(2, 30));
    // 2024-03-31 02:30 does not exist in Berlin: 03:00 CEST = 01:00 UTC
    let d = next_deadline(&p, None, utc(2024, 3, 30, 20, 0));
    assert_eq!(d, utc(2024, 3, 31, 1, 0));
    assert_eq!(d.with_timezone(&Berlin).time(), hm(3, 0));
    // the next night is normal again: 02:30 CEST = 00:30 UTC
    assert_eq!(
        next_deadline(&p, None, utc(2024, 3, 31, 20, 0)),
        utc(2024, 4, 1, 0, 30)
    );
    // 2024-10-27 02:30 exists twice: the first (CEST, 00:30 UTC)
    assert_eq!(
        next_deadline(&p, None, utc(2024, 10, 26, 20, 0)),
        utc(2024, 10, 27, 0, 30)
    );
    // and a zone whose gap is at midnight (Santiago, 2024-09-08 00:00 -> 01:00)
    let p = VehiclePolicy {
        time_zone: chrono_tz::America::Santiago,
        ..berlin(hm(0, 15))
    };
    let d = next_deadline(&p, None, utc(2024, 9, 7, 20, 0));
    let local = d.with_timezone(&chrono_tz::America::Santiago);
    assert_eq!(
        local.naive_local(),
        NaiveDate::from_ymd_opt(2024, 9, 8)
            .unwrap()
            .and_hms_opt(1, 0, 0)
            .unwrap()
    );
}

#[test]
fn plug_in_shortly_before_the_deadline_plans_for_the_next_day() {
    let p = berlin(hm(7, 0));
    // 2024-06-14 is a Friday; 07:00 CEST = 05:00 UTC
    let today = utc(2024, 6, 14, 5, 0);
    let tomorrow = utc(2024, 6, 15, 5, 0);
    assert_eq!(
        next_deadline(&p, None, today - TimeDelta::minutes(5)),
        tomorrow
    );
    assert_eq!(
        next_deadline(&p, None, today - TimeDelta::minutes(29)),
        tomorrow
    );
    assert_eq!(next_deadline(&p, None, today - MIN_LEAD), today);
    assert_eq!(
        next_deadline(&p, None, today - TimeDelta::minutes(31)),
        today
    );
    assert_eq!(next_deadline(&p, None, today), tomorrow);
    assert_eq!(
        next_deadline(&p, None, today + TimeDelta::hours(1)),
        tomorrow
    );
}

#[test]
fn weekday_table_picks_the_day_of_the_deadline() {
    let mut p = berlin(hm(7, 0));
    p.deadlines[Weekday::Sat.num_days_from_monday() as usize] = hm(9, 30);
    p.deadlines[Weekday::Sun.num_days_from_monday() as usize] = hm(10, 0);
    // Friday evening -> Saturday 09:30 CEST
    assert_eq!(
        next_deadline(&p, None, utc(2024, 6, 14, 20, 0)),
        utc(2024, 6, 15, 7, 30)
    );
    // Saturday 08:00 CEST: Saturday's 09:30 is still ahead
    assert_eq!(
        next_deadline(&p, None, utc(2024, 6, 15, 6, 0)),
        utc(2024, 6, 15, 7, 30)
    );
    // Saturday evening -> Sunday 10:00
    assert_eq!(
        next_deadline(&p, None, utc(2024, 6, 15, 20, 0)),
        utc(2024, 6, 16, 8, 0)
    );
    // Sunday evening -> Monday 07:00
    assert_eq!(
        next_deadline(&p, None, utc(2024, 6, 16, 20, 0)),
        utc(2024, 6, 17, 5, 0)
    );
    // Sunday 09:45 CEST: too close to 10:00, so Monday 07:00
    assert_eq!(
        next_deadline(&p, None, utc(2024, 6, 16, 7, 45)),
        utc(2024, 6, 17, 5, 0)
    );
}

#[test]
fn enode_deadline_is_utc_and_used_only_when_configured() {
    let enode = SmartChargingPolicy {
        is_enabled: true,
        deadline_utc: Some(hm(5, 0)),
    };
    let mut p = berlin(hm(7, 0));
    let now = utc(2024, 6, 14, 20, 0);
    assert_eq!(next_deadline(&p, Some(&enode), now), utc(2024, 6, 15, 5, 0));
    p.use_enode_deadline = true;
    p.deadlines = [hm(9, 0); 7];
    assert_eq!(next_deadline(&p, Some(&enode), now), utc(2024, 6, 15, 5, 0));
    // same day when far enough ahead, next day within the lead
    assert_eq!(
        next_deadline(&p, Some(&enode), utc(2024, 6, 15, 1, 0)),
        utc(2024, 6, 15, 5, 0)
    );
    assert_eq!(
        next_deadline(&p, Some(&enode), utc(2024, 6, 15, 4, 40)),
        utc(2024, 6, 16, 5, 0)
    );
    // in winter still 05:00 UTC (06:00 in Berlin)
    assert_eq!(
        next_deadline(&p, Some(&enode), utc(2024, 12, 1, 20, 0)),
        utc(2024, 12, 2, 5, 0)
    );
    // an Enode policy without deadline, or none at all: the local deadline
    let no_deadline = SmartChargingPolicy {
        is_enabled: false,
        deadline_utc: None,
    };
    assert_eq!(
        next_deadline(&p, Some(&no_deadline), now),
        utc(2024, 6, 15, 7, 0)
    );
    assert_eq!(next_deadline(&p, None, now), utc(2024, 6, 15, 7, 0));
}

fn vehicle(cs: ChargeState) -> Vehicle {
    Vehicle {
        id: "car-1".into(),
        information: None,
        charge_state: Some(cs),
        smart_charging_policy: None,
        location: None,
        odometer: None,
        charging_location_id: Some("home".into()),
        is_reachable: Some(true),
        last_seen: None,
    }
}

fn plugged(soc: f64) -> ChargeState {
    ChargeState {
        battery_level: Some(soc),
        battery_capacity_kwh: Some(60.0),
        charge_limit: Some(90.0),
        charge_rate_kw: None,
        charge_time_remaining_min: None,
        is_charging: Some(false),
        is_plugged_in: Some(true),
        reasons: vec![],
        range_km: None,
    }
}

#[test]
fn observation_takes_power_from_policy_then_vehicle_then_estimate() {
    let p = VehiclePolicy::defaults(Tz::UTC);
    let v = vehicle(plugged(35.0));
    assert_eq!(
        Observation::from_vehicle(&v, None, &p),
        Err(NotPlannable::NoPower)
    );
    let o = Observation::from_vehicle(&v, Some(7.2), &p).unwrap();
    assert_eq!(
        o,
        Observation {
            soc_percent: 35.0,
            battery_kwh: 60.0,
            charge_limit_percent: Some(90.0),
            power_kw: 7.2,
            charging: false,
        }
    );
    let charging = vehicle(ChargeState {
        is_charging: Some(true),
        charge_rate_kw: Some(10.8),
        ..plugged(35.0)
    });
    let o = Observation::from_vehicle(&charging, Some(7.2), &p).unwrap();
    assert_eq!(o.power_kw, 10.8);
    let fixed = VehiclePolicy {
        max_power_kw: Some(11.0),
        ..p.clone()
    };
    assert_eq!(
        Observation::from_vehicle(&charging, Some(7.2), &fixed)
            .unwrap()
            .power_kw,
        11.0
    );
    // a rate left over from an earlier charge is not trusted
    let stale = vehicle(ChargeState {
        charge_rate_kw: Some(10.8),
        ..plugged(35.0)
    });
    assert_eq!(
        Observation::from_vehicle(&stale, None, &p),
        Err(NotPlannable::NoPower)
    );
    assert_eq!(
        Observation::from_vehicle(&v, Some(0.0), &p),
        Err(NotPlannable::NoPower)
    );
}

#[test]
fn observation_says_what_is_missing() {
    let p = VehiclePolicy {
        max_power_kw: Some(11.0),
        ..VehiclePolicy::defaults(Tz::UTC)
    };
    let mut v = vehicle(plugged(35.0));
    v.charge_state = None;
    assert_eq!(
        Observation::from_vehicle(&v, None, &p),
        Err(NotPlannable::NoChargeState)
    );
    let v = vehicle(ChargeState {
        battery_level: None,
        ..plugged(35.0)
    });
    assert_eq!(
        Observation::from_vehicle(&v, None, &p),
        Err(NotPlannable::NoSoc)
    );
    let v = vehicle(ChargeState {
        battery_capacity_kwh: Some(0.0),
        ..plugged(35.0)
    });
    assert_eq!(
        Observation::from_vehicle(&v, None, &p),
        Err(NotPlannable::NoCapacity)
    );
    // odd readings: SoC clamped, a zero charge limit means unknown
    let v = vehicle(ChargeState {
        battery_level: Some(101.0),
        charge_limit: Some(0.0),
        ..plugged(35.0)
    });
    let o = Observation::from_vehicle(&v, None, &p).unwrap();
    assert_eq!((o.soc_percent, o.charge_limit_percent), (100.0, None));
    assert_eq!(
        NotPlannable::NoPower.to_string(),
        "charge power unknown: set max_power_kw or wait until the vehicle has charged once"
    );
}

/// The spot prices of `file` in tests/data/prices as consumer prices per kWh.
fn curve(file: &str) -> PriceCurve {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/prices")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let quote = crate::prices::file::parse(&path, &text, "EUR").unwrap();
    Tariff::spot_only("EUR").apply(&quote)
}

#[test]
fn request_from_a_real_evening_plans_a_feasible_night() {
    let curve = curve("DE-LU-2024-10-05_07.csv");
    let policy = VehiclePolicy {
        max_blocks: Some(2),
        ..berlin(hm(7, 0))
    };
    // Sunday 2024-10-06, plugged in at 19:30 CEST
    let now = utc(2024, 10, 6, 17, 30);
    let deadline = next_deadline(&policy, None, now);
    assert_eq!(deadline, utc(2024, 10, 7, 5, 0));
    let v = vehicle(plugged(35.0));
    let obs = Observation::from_vehicle(&v, Some(11.0), &policy).unwrap();
    let req = plan_request(now, &policy, deadline, &obs, &curve).unwrap();

    assert_eq!(req.now, now);
    assert_eq!(req.deadline, deadline);
    assert_eq!(
        (req.soc_percent, req.target_percent, req.battery_kwh),
        (35.0, 80.0, 60.0)
    );
    assert_eq!((req.max_power_kw, req.efficiency), (11.0, 0.9));
    assert_eq!(req.charge_limit_percent, Some(90.0));
    assert_eq!(req.max_blocks, Some(2));
    assert_eq!(req.tie_break, TieBreak::Later);
    // every slot of the file from its start (within the week of history)
    // up to the deadline, 1:1
    let first = curve.slots()[0];
    assert_eq!(req.prices[0].start, first.start);
    assert_eq!(req.prices[0].price_per_kwh, first.price);
    assert_eq!(req.prices.last().unwrap().end, deadline);
    assert!(req.prices.iter().all(|s| s.start < deadline));
    assert_eq!(
        req.prices.len(),
        curve.slots().iter().filter(|s| s.start < deadline).count()
    );

    let plan = planner::plan(&req).unwrap();
    assert!(plan.feasible, "{plan:?}");
    assert!(plan.blocks.len() <= 2);
    assert!(plan
        .blocks
        .iter()
        .all(|b| b.start >= now && b.end <= deadline));
    // 45 % of 60 kWh through a 90 % efficient charger
    assert!((plan.energy_kwh - 30.0).abs() < 0.2, "{}", plan.energy_kwh);
    assert!(plan.cost < plan.asap_cost, "{plan:?}");
    assert!(plan.blocks.iter().all(|b| !b.tentative));
}

#[test]
fn request_before_publication_forecasts_from_a_week_of_history() {
    let full = curve("DE-LU-2023-2025.csv");
    // 2024-06-14 12:00 UTC: tomorrow's prices are not out yet
    let now = utc(2024, 6, 14, 10, 0);
    let published = utc(2024, 6, 14, 22, 0);
    let known: Vec<Slot> = full
        .slots()
        .iter()
        .filter(|s| s.end <= published)
        .copied()
        .collect();
    let curve = PriceCurve::new("EUR", known).unwrap();
    let policy = VehiclePolicy {
        max_power_kw: Some(11.0),
        ..berlin(hm(7, 0))
    };
    let deadline = next_deadline(&policy, None, now);
    assert_eq!(deadline, utc(2024, 6, 15, 5, 0));
    let obs = Observation::from_vehicle(&vehicle(plugged(20.0)), None, &policy).unwrap();
    let req = plan_request(now, &policy, deadline, &obs, &curve).unwrap();
    assert_eq!(req.prices[0].end, now - PRICE_HISTORY + TimeDelta::hours(1));
    assert_eq!(req.prices.last().unwrap().end, published);
    let plan = planner::plan(&req).unwrap();
    assert!(plan.feasible, "{plan:?}");
    assert!(plan
        .blocks
        .iter()
        .all(|b| b.start >= now && b.end <= deadline));
    // the night after 22:00 is priced from the week before
    assert!(
        plan.warnings.iter().any(|w| w.contains("7 days earlier")),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn requests_that_cannot_plan_say_why() {
    let curve = curve("DE-LU-2024-10-05_07.csv");
    let policy = berlin(hm(7, 0));
    let obs = Observation {
        soc_percent: 50.0,
        battery_kwh: 50.0,
        charge_limit_percent: None,
        power_kw: 11.0,
        charging: false,
    };
    // more than a week after the last price: nothing to forecast from
    let late = utc(2024, 10, 20, 12, 0);
    assert_eq!(
        plan_request(late, &policy, late + TimeDelta::hours(12), &obs, &curve),
        Err(NotPlannable::NoPrices)
    );
    // before the first price: nothing known up to the deadline
    let early = utc(2024, 9, 1, 12, 0);
    assert_eq!(
        plan_request(early, &policy, early + TimeDelta::hours(12), &obs, &curve),
        Err(NotPlannable::NoPrices)
    );
    let now = utc(2024, 10, 6, 12, 0);
    match plan_request(now, &policy, now - TimeDelta::hours(1), &obs, &curve) {
        Err(NotPlannable::Invalid(e)) => assert!(e.to_string().contains("deadline"), "{e}"),
        other => panic!("{other:?}"),
    }
    match plan_request(now, &policy, now + TimeDelta::days(8), &obs, &curve) {
        Err(NotPlannable::Invalid(e)) => assert!(e.to_string().contains("7 days"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deadline_instants_are_on_whole_minutes() {
    // the planner needs whole minutes; a gap end is one even in odd zones
    let p = VehiclePolicy {
        time_zone: chrono_tz::Australia::Lord_Howe,
        ..berlin(hm(2, 15))
    };
    // Lord Howe moves clocks by 30 minutes, 02:00 -> 02:30, on 2024-10-06
    let d = next_deadline(&p, None, utc(2024, 10, 5, 10, 0));
    assert_eq!(d.second(), 0);
    let local = d.with_timezone(&chrono_tz::Australia::Lord_Howe);
    assert_eq!(local.time(), hm(2, 30), "{local}");
}

#[test]
fn shipped_example_resolves_as_annotated() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/smartcharged.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let env = |k: &str| (k == crate::config::SECRET_ENV).then(|| "s".to_owned());
    let c = Config::parse(&text, &path, &env).unwrap().policy;
    let g = c.for_vehicle("bob", "other");
    assert_eq!(g.time_zone, Berlin);
    assert_eq!(g.deadline_on(Weekday::Mon), hm(7, 0));
    assert_eq!(g.deadline_on(Weekday::Sat), hm(9, 30));
    let mut defaults = VehiclePolicy::defaults(Berlin);
    defaults.deadlines[5] = hm(9, 30);
    defaults.deadlines[6] = hm(9, 30);
    assert_eq!(g, defaults, "the example's global values are the defaults");
    let a = c.for_vehicle("alice", "other");
    assert_eq!(a.target_percent, 90.0);
    assert!(!a.allows_location(Some("elsewhere")));
    let v = c.for_vehicle("alice", "your-vehicle-id");
    assert_eq!(v.target_percent, 90.0);
    assert_eq!(v.deadline_on(Weekday::Fri), hm(5, 30));
    assert_eq!(v.deadline_on(Weekday::Sat), hm(6, 15));
    assert_eq!((v.max_power_kw, v.min_soc_percent), (Some(7.4), 30.0));
}

#[test]
fn a_replan_keeps_the_current_deadline_until_it_passes() {
    let p = berlin(hm(7, 0));
    let today = utc(2024, 6, 14, 5, 0);
    let tomorrow = utc(2024, 6, 15, 5, 0);
    let at = today - TimeDelta::minutes(20);
    assert_eq!(next_deadline(&p, None, at), tomorrow, "a new plan");
    assert_eq!(replan_deadline(&p, None, at, None), tomorrow);
    assert_eq!(replan_deadline(&p, None, at, Some(today)), today);
    assert_eq!(
        replan_deadline(&p, None, today - TimeDelta::minutes(1), Some(today)),
        today
    );
    // passed: the next one
    assert_eq!(replan_deadline(&p, None, today, Some(today)), tomorrow);
    // the policy moved the deadline: the new one, at once
    let later = berlin(hm(8, 0));
    assert_eq!(
        replan_deadline(&later, None, at, Some(today)),
        utc(2024, 6, 14, 6, 0)
    );
    // the Enode deadline is kept the same way
    let enode = SmartChargingPolicy {
        is_enabled: false,
        deadline_utc: Some(hm(5, 0)),
    };
    let e = VehiclePolicy {
        use_enode_deadline: true,
        ..berlin(hm(9, 0))
    };
    assert_eq!(replan_deadline(&e, Some(&enode), at, Some(today)), today);
    assert_eq!(
        replan_deadline(&e, None, at, Some(today)),
        utc(2024, 6, 14, 7, 0)
    );
}

/// One night of the controller, the policy and the planner without I/O:
/// a car that does what it is told, observed every 150 s and at plan
/// edges (never on a whole minute), with every kind of replan forced
/// into the middle of a running block: the hourly sweep, a SoC drift, a
/// change of charge power and new prices. Each must leave the car
/// charging (no STOP and START a minute later), and over the night no
/// STOP may be followed by a START within `gap`.
fn replans_in_running_blocks(policy: &VehiclePolicy, gap: TimeDelta) {
    use crate::daemon::control::{
        Action, ActivePlan, ControlState, Seen, Step, SWEEP, SWEEP_REASON,
    };

    let curve = curve("DE-LU-2023-2025.csv");
    let plug_in = utc(2024, 3, 5, 17, 0) + TimeDelta::seconds(7);
    let (battery, mut soc, mut charging, mut kw) = (60.0, 20.0, false, 11.0);
    let mut version = 1u64;
    let mut state = ControlState::default();
    let mut commands: Vec<(DateTime<Utc>, Action)> = Vec::new();
    // reasons of the forced replans
    let mut replanned: Vec<&'static str> = Vec::new();
    let mut forced: Vec<&'static str> = Vec::new();
    let mut last_trigger: Option<DateTime<Utc>> = None;
    let mut now = plug_in;
    let mut next_poll = plug_in;
    let mut deadline = None;
    while deadline.is_none_or(|d| now < d) {
        // force one replan of each kind into running blocks, a few minutes
        // apart and with some minutes of the block left
        let block = state.plan.as_ref().and_then(|p| {
            p.plan
                .blocks
                .iter()
                .find(|b| b.start <= now && now < b.end)
                .cloned()
        });
        let mut trigger = None;
        if let (Some(b), true) = (block, charging) {
            let ready = now - b.start >= TimeDelta::minutes(4)
                && b.end - now >= TimeDelta::minutes(10)
                && last_trigger.is_none_or(|t| now - t >= TimeDelta::minutes(4));
            let kinds = [SWEEP_REASON, "drift", "power", "prices"];
            if let Some(kind) = kinds
                .into_iter()
                .find(|k| !forced.contains(k))
                .filter(|_| ready)
            {
                trigger = Some(kind);
                last_trigger = Some(now);
                match kind {
                    "drift" => soc -= 6.0,
                    "power" => kw = 9.0,
                    "prices" => version += 1,
                    _ => state.plan.as_mut().unwrap().made_at = now - SWEEP,
                }
            }
        }
        forced.extend(trigger);
        let cs = ChargeState {
            battery_level: Some((soc * 10.0f64).round() / 10.0),
            is_charging: Some(charging),
            charge_rate_kw: charging.then_some(kw),
            ..plugged(soc)
        };
        let v = vehicle(cs);
        let seen = Seen::from_vehicle(&v, true);
        state.observe(now, &seen, true);
        for _ in 0..3 {
            match state.decide(now, &seen, policy.replan_soc_drift_percent, version) {
                Step::Idle => break,
                Step::Plan(reason) => {
                    let current = state.plan.as_ref().map(|p| p.deadline);
                    let d = replan_deadline(policy, None, now, current);
                    deadline = Some(d);
                    let obs = Observation::from_vehicle(&v, state.power_kw.or(Some(11.0)), policy)
                        .unwrap();
                    let req = plan_request(now, policy, d, &obs, &curve).unwrap();
                    let plan = planner::plan(&req).unwrap();
                    if trigger.is_some() {
                        replanned.push(reason);
                        // a block running at a replan goes on (a swept
                        // plan may also be kept: then it goes on too)
                        assert!(
                            plan.is_charging_at(now),
                            "{reason} at {now} stops the car: {:?}",
                            plan.blocks
                        );
                    }
                    if reason == SWEEP_REASON
                        && state
                            .plan
                            .as_ref()
                            .is_some_and(|cur| cur.still_good(&plan, now))
                    {
                        state.plan.as_mut().unwrap().made_at = now;
                    } else {
                        state.plan = Some(ActivePlan {
                            plan,
                            made_at: now,
                            deadline: d,
                            soc_at_plan: req.soc_percent,
                            battery_kwh: req.battery_kwh,
                            power_kw: req.max_power_kw,
                            efficiency: req.efficiency,
                            prices_version: version,
                        });
                    }
                }
                Step::Command(action, _) => {
                    state.sent(action, now);
                    commands.push((now, action));
                    charging = action == Action::Start;
                    break;
                }
                Step::GiveUp(a) => panic!("gave up on {a:?}"),
            }
        }
        if now >= next_poll {
            next_poll = now + TimeDelta::seconds(150);
        }
        let wake = state.next_wake(now).map_or(next_poll, |w| w.min(next_poll));
        // the car charges until the next look at it
        if charging {
            let hours = (wake - now).num_milliseconds() as f64 / 3_600_000.0;
            soc = (soc + kw * hours / battery * 100.0).min(90.0);
        }
        now = wake;
    }
    assert_eq!(
        forced,
        [SWEEP_REASON, "drift", "power", "prices"],
        "not every replan was forced"
    );
    for reason in [
        SWEEP_REASON,
        "state of charge drifted from the plan",
        "charge power differs from the plan",
        "new prices",
    ] {
        assert!(
            replanned.contains(&reason),
            "no replan for {reason} while charging: {replanned:?}"
        );
    }
    for w in commands.windows(2) {
        assert!(
            !(w[0].1 == Action::Stop && w[1].1 == Action::Start && w[1].0 - w[0].0 < gap),
            "STOP then START: {commands:?}"
        );
    }
    assert!(soc >= policy.target_percent - 0.5, "left with {soc:.1} %");
}

#[test]
fn replans_in_a_running_block_send_no_stop_and_start() {
    // the power comes from the car (11 kW, then 9 kW), not the policy
    let policy = VehiclePolicy {
        efficiency: 1.0,
        ..berlin(hm(7, 0))
    };
    replans_in_running_blocks(&policy, TimeDelta::minutes(10));
    let paused = VehiclePolicy {
        min_pause_minutes: Some(30),
        ..policy
    };
    replans_in_running_blocks(&paused, TimeDelta::minutes(30));
}
