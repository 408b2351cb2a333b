//! A year of real nights, end to end: the real daemon against enode-sim on
//! paused time, one car per market with seeded sessions, the market's
//! day-ahead prices revealed only at their publication time, and the
//! comparison with the hindsight optimum, charging at once and two peer
//! strategies.
//!
//! Shared by `examples/year.rs` (the full year) and `tests/it/year_short.rs`
//! (two weeks per market in CI). Self-contained, so the example can
//! include it with `#[path]`.

#![allow(dead_code)] // the example and the test use different parts

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use enode_sim::{EventAction, EventSpec, LocationSpec, Scenario, UserSpec, VehicleSpec, When};
use planner::{PlanRequest, PriceSlot, TieBreak};
use rand::{Rng, SeedableRng};
use smartcharged::daemon::fleet::FleetEvent;
use smartcharged::daemon::run::{Daemon, Options};

/// The SoC the policy asks for (the daemon's default `target_percent`).
pub const TARGET: f64 = 80.0;
/// Wallbox power, kW.
pub const POWER_KW: f64 = 11.0;
/// Local time (market zone) when tomorrow's day-ahead prices are out: the
/// SDAC results, which ENTSO-E and Nord Pool publish from about 12:45
/// CET/CEST (the `entsoe` and `nordpool` providers' publication time).
pub const PUBLICATION: (u32, u32) = (12, 45);
/// The vehicle and user ids of the one car.
pub const VEHICLE: &str = "car";
/// The user owning it.
pub const USER: &str = "driver";

/// A day-ahead market and the year it is simulated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    /// Germany-Luxembourg, 2024.
    DeLu,
    /// Sweden SE3 (Stockholm), 2023.
    Se3,
    /// The Netherlands, 2024.
    Nl,
}

impl Market {
    /// All three, in report order.
    pub const ALL: [Market; 3] = [Market::DeLu, Market::Se3, Market::Nl];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Market::DeLu => "DE-LU",
            Market::Se3 => "SE3",
            Market::Nl => "NL",
        }
    }

    /// Reads a market name as `name` prints it (any case).
    pub fn parse(s: &str) -> Option<Market> {
        Market::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
    }

    /// The market's (and the driver's) time zone.
    pub fn tz(self) -> Tz {
        match self {
            Market::DeLu => chrono_tz::Europe::Berlin,
            Market::Se3 => chrono_tz::Europe::Stockholm,
            Market::Nl => chrono_tz::Europe::Amsterdam,
        }
    }

    /// The simulated year.
    pub fn year(self) -> i32 {
        match self {
            Market::Se3 => 2023,
            _ => 2024,
        }
    }

    /// The price file in `tests/data/prices`.
    pub fn file(self) -> &'static str {
        match self {
            Market::DeLu => "DE-LU-2023-2025.csv",
            Market::Se3 => "SE3-2023-2024.csv",
            Market::Nl => "NL-2024.csv",
        }
    }

    /// Hourly spot prices (EUR/MWh) by UTC hour start.
    pub fn spot(self) -> BTreeMap<DateTime<Utc>, f64> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/prices")
            .join(self.file());
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let (t, p) = l.split_once(',')?;
                Some((t.parse().ok()?, p.trim().parse().ok()?))
            })
            .collect()
    }
}

/// The UTC instant of a local time (the earlier one when it repeats, the
/// first one after a spring-forward gap).
fn local(tz: Tz, day: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    let naive = day.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("valid time"));
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        chrono::LocalResult::None => local(tz, day, h + 1, 0),
    }
}

/// The publication instant on local day `day`.
pub fn publication(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    local(tz, day, PUBLICATION.0, PUBLICATION.1)
}

/// How far prices are published at `t`: the end of tomorrow (local) from
/// today's publication on, else the end of today.
pub fn published_until(tz: Tz, t: DateTime<Utc>) -> DateTime<Utc> {
    let today = t.with_timezone(&tz).date_naive();
    let days = if t >= publication(tz, today) { 2 } else { 1 };
    local(tz, today + TimeDelta::days(days), 0, 0)
}

/// One plug-in session of the car.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Session {
    /// The cable goes in.
    pub arrive: DateTime<Utc>,
    /// The cable comes out: the deadline.
    pub depart: DateTime<Utc>,
    /// State of charge at plug-in, percent.
    pub soc: f64,
}

/// The car: battery, consumption and its sessions.
#[derive(Debug, Clone)]
pub struct Car {
    /// Usable battery, kWh.
    pub battery_kwh: f64,
    /// Consumption, kWh per km.
    pub kwh_per_km: f64,
    /// Sessions in time order, disjoint.
    pub sessions: Vec<Session>,
}

/// A standard normal sample (Box-Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen::<f64>();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A local time drawn uniformly on a 5-minute grid between two hours.
fn at(rng: &mut impl Rng, tz: Tz, day: NaiveDate, from_h: u32, to_h: u32) -> DateTime<Utc> {
    let m = rng.gen_range(0..(to_h - from_h) * 12) * 5;
    local(tz, day, from_h + m / 60, m % 60)
}

/// The car's sessions for `nights` nights from January 1st of the market's
/// year, seeded.
///
/// Weeknights (Sunday to Thursday): plug in 17:00-21:00, leave 06:00-08:00.
/// Friday: plug in 18:00-23:00, leave Saturday 08:00-11:00. Saturday: back
/// at midday, 11:00-16:00 (often before the day-ahead publication, so the
/// plan starts on forecast prices), leave Sunday 09:00-11:00. Some nights
/// there is no session (5 % on weeknights, 20 % at weekends): the driving
/// of those days adds up for the next one. Daily distance is lognormal
/// (median 35 km, twice as spread at weekends), capped at 300 km; the
/// battery is 60-80 kWh and uses 0.16-0.20 kWh/km.
pub fn car(market: Market, nights: u32, seed: u64) -> Car {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ ((market as u64) << 32));
    let tz = market.tz();
    let battery_kwh = f64::from(rng.gen_range(60u32..=80));
    let kwh_per_km = rng.gen_range(0.16..0.20);
    let first = NaiveDate::from_ymd_opt(market.year(), 1, 1).expect("valid date");
    let mut sessions = Vec::new();
    // SoC left when the car last drove off, and km driven since.
    let (mut left_with, mut km) = (60.0, 0.0);
    let mut last_depart: Option<DateTime<Utc>> = None;
    for n in 0..nights {
        let day = first + TimeDelta::days(i64::from(n));
        let next = day + TimeDelta::days(1);
        let weekend = matches!(day.weekday(), Weekday::Fri | Weekday::Sat);
        let sigma = if weekend { 1.0 } else { 0.5 };
        km += (35f64.ln() + sigma * normal(&mut rng)).exp().min(300.0);
        let (arrive, depart) = match day.weekday() {
            Weekday::Fri => (at(&mut rng, tz, day, 18, 23), at(&mut rng, tz, next, 8, 11)),
            Weekday::Sat => (at(&mut rng, tz, day, 11, 16), at(&mut rng, tz, next, 9, 11)),
            _ => (at(&mut rng, tz, day, 17, 21), at(&mut rng, tz, next, 6, 8)),
        };
        let skip = rng.gen_bool(if weekend { 0.2 } else { 0.05 });
        let arrive = arrive.max(last_depart.map_or(arrive, |d| d + TimeDelta::hours(1)));
        if skip {
            continue;
        }
        let soc = (left_with - km * kwh_per_km / battery_kwh * 100.0).max(5.0);
        km = 0.0;
        sessions.push(Session {
            arrive,
            depart,
            soc,
        });
        let hours = (depart - arrive).num_minutes() as f64 / 60.0;
        left_with = TARGET
            .max(soc)
            .min(soc + hours * POWER_KW / battery_kwh * 100.0);
        last_depart = Some(depart);
    }
    Car {
        battery_kwh,
        kwh_per_km,
        sessions,
    }
}

/// The simulator's world: one user with one car at home, unplugged, that
/// waits for a command after plug-in (smart charging set up on the car),
/// plugs in at each arrival with its SoC and unplugs at each departure.
pub fn scenario(car: &Car, start: DateTime<Utc>) -> Scenario {
    let mut user = UserSpec::new(USER);
    user.locations.push(LocationSpec::new("home"));
    let mut v = VehicleSpec::new(VEHICLE);
    v.capacity_kwh = car.battery_kwh;
    v.charge_kw = POWER_KW;
    v.charge_limit = 100.0;
    v.soc = car.sessions.first().map_or(50.0, |s| s.soc);
    v.location = Some("home".into());
    v.plugged_in = false;
    v.charge_on_plug_in = false;
    for s in &car.sessions {
        let mut plug = EventSpec::new(When::At(s.arrive), EventAction::PlugIn);
        plug.soc = Some(s.soc);
        v.events.push(plug);
        v.events
            .push(EventSpec::new(When::At(s.depart), EventAction::Unplug));
    }
    user.vehicles.push(v);
    Scenario {
        start: Some(start),
        users: vec![user],
        ..Scenario::default()
    }
}

/// The daemon's config: the `file` price source (re-read when it changes,
/// fetched at the market's publication time), the policy defaults with
/// the car's departure as deadline, its wallbox power, efficiency 1 (the
/// simulator charges without loss) and `policy_extra`.
pub fn config_text(
    market: Market,
    base_url: &str,
    store: &Path,
    prices: &Path,
    deadline: &str,
    policy_extra: &str,
) -> String {
    smartcharged::demo::config_text_in(
        base_url,
        store,
        prices,
        &format!(
            "{policy_extra}\n\n[[policy.vehicles]]\nid = \"{VEHICLE}\"\nmax_power_kw = {POWER_KW}\ndeadline = \"{deadline}\"\n"
        ),
        &market.tz().to_string(),
        &format!(
            "publication_time = \"{:02}:{:02}\"",
            PUBLICATION.0, PUBLICATION.1
        ),
    )
}

/// Writes the price file as published at `t`: the CSV rows from eight days
/// before `t` (history for forecasts) up to [`published_until`].
fn reveal(path: &Path, spot: &BTreeMap<DateTime<Utc>, f64>, tz: Tz, t: DateTime<Utc>) {
    use std::fmt::Write as _;
    let mut text = String::from("start_utc,price_eur_per_mwh\n");
    for (h, p) in spot.range(t - TimeDelta::days(8)..published_until(tz, t)) {
        let _ = writeln!(text, "{},{p}", h.format("%Y-%m-%dT%H:%M:%SZ"));
    }
    // Written aside and renamed, so a read never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write prices");
    std::fs::rename(&tmp, path).expect("publish prices");
}

/// What the real daemon did over the car's sessions.
#[derive(Debug, Clone, Default)]
pub struct DaemonRun {
    /// Charge segments of the simulator (what really flowed).
    pub segments: Vec<enode_sim::ChargeSegment>,
    /// START/STOP commands sent: (instant, action, result).
    pub commands: Vec<(DateTime<Utc>, String, String)>,
    /// Plans made (first plans and replans).
    pub plans: usize,
    /// Every plan: when, why, the SoC it started from and its blocks.
    pub plan_log: Vec<String>,
    /// The simulator's violation counters were all zero.
    pub clean: bool,
    /// Violations the simulator counted, if any.
    pub violations: String,
}

/// Runs the real daemon (`Daemon::start`) on a paused clock from noon
/// before the first session until after the last departure. Call under
/// paused tokio time (`start_paused`): a year then takes seconds to minutes.
///
/// A task plays the market and the driver: at every publication instant it
/// rewrites the price file with the next day, and a minute before every
/// arrival it reloads the daemon's config with that session's departure as
/// the vehicle's deadline, as the driver would set it.
pub async fn run_daemon(market: Market, car: &Car, policy_extra: &str) -> DaemonRun {
    let tz = market.tz();
    let spot = market.spot();
    let Some(first) = car.sessions.first() else {
        return DaemonRun {
            clean: true,
            ..DaemonRun::default()
        };
    };
    let first_day = first.arrive.with_timezone(&tz).date_naive();
    let start = local(tz, first_day, 12, 0);
    let end = car.sessions.last().expect("one session").depart + TimeDelta::hours(1);
    let clock = clock::Clock::starting_at(start);
    let sim = enode_sim::spawn(scenario(car, start), clock.clone())
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let store_path = dir.path().join("store");
    link(&sim, &store_path, clock.now());
    let prices = dir.path().join("prices.csv");
    reveal(&prices, &spot, tz, start);
    let hhmm = |t: DateTime<Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    let text = |deadline: &str| {
        config_text(
            market,
            &sim.base_url(),
            &store_path,
            &prices,
            deadline,
            policy_extra,
        )
    };
    let parse = |text: String| {
        let env = |k: &str| {
            (k == smartcharged::config::SECRET_ENV)
                .then(|| smartcharged::demo::SIM_CLIENT_SECRET.to_owned())
        };
        smartcharged::config::Config::parse(&text, &dir.path().join("smartcharged.toml"), &env)
            .unwrap_or_else(|e| panic!("config: {e}"))
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let daemon = Daemon::start(
        parse(text(&hhmm(first.depart))),
        Options {
            clock: clock.clone(),
            cron: false,
            events: Some(tx),
            seed: 7,
        },
    )
    .await
    .expect("daemon starts");

    // The market's and the driver's instants, in time order.
    enum Act {
        Publish,
        Deadline(String),
    }
    let mut acts: Vec<(DateTime<Utc>, Act)> = Vec::new();
    let mut day = first_day;
    while publication(tz, day) < end {
        acts.push((publication(tz, day), Act::Publish));
        day += TimeDelta::days(1);
    }
    for s in &car.sessions {
        acts.push((
            s.arrive - TimeDelta::minutes(1),
            Act::Deadline(hhmm(s.depart)),
        ));
    }
    acts.sort_by_key(|a| a.0);
    let mut run = DaemonRun::default();
    let mut collect = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<FleetEvent>| {
        while let Ok(e) = rx.try_recv() {
            match e {
                FleetEvent::Planned { reason, plan, .. } => {
                    run.plans += 1;
                    let blocks: Vec<String> = plan
                        .plan
                        .blocks
                        .iter()
                        .map(|b| {
                            format!(
                                "{}..{}",
                                b.start.format("%m-%d %H:%M"),
                                b.end.format("%H:%M")
                            )
                        })
                        .collect();
                    run.plan_log.push(format!(
                        "{} {reason}: soc {:.2} -> {} min [{}]",
                        plan.made_at.format("%m-%d %H:%M:%S"),
                        plan.soc_at_plan,
                        plan.plan.charge_minutes,
                        blocks.join(", ")
                    ));
                }
                FleetEvent::Command(c) => run.commands.push((c.at, c.action, c.result)),
            }
        }
    };
    for (t, act) in acts {
        clock.sleep_until(t).await;
        match act {
            Act::Publish => reveal(&prices, &spot, tz, t),
            Act::Deadline(d) => daemon.reload(parse(text(&d))),
        }
        collect(&mut rx);
    }
    clock.sleep_until(end).await;
    daemon.shutdown().await.expect("daemon stops");
    collect(&mut rx);
    let stats = sim.handle.stats();
    let v = &stats.violations;
    run.clean = v.command_unplugged == 0 && v.command_away == 0 && v.expired_token == 0;
    run.violations = format!("{v:?}");
    run.segments = sim.handle.vehicle(VEHICLE).expect("the car").segments;
    run
}

/// Stores the scenario's user as linked, with tokens from the simulator.
fn link(sim: &enode_sim::Sim, store_path: &Path, now: DateTime<Utc>) {
    use smartcharged::users::{User, UserId, UserStatus};
    let store = smartcharged::store::Store::open(store_path).expect("store");
    let t = sim
        .handle
        .grant_tokens(USER, "offline_access all")
        .expect("tokens");
    let tokens = smartcharged::model::TokenSet {
        access_token: smartcharged::secret::Secret::new(t.access_token),
        refresh_token: t.refresh_token.map(smartcharged::secret::Secret::new),
        expires_at: now + TimeDelta::seconds(t.expires_in),
        scopes: vec!["offline_access".into(), "all".into()],
    };
    let user = User {
        id: UserId::new(USER).expect("valid id"),
        status: UserStatus::Active,
        linked_at: now,
        vendor: Some("TESLA".into()),
    };
    store.save_linked_user(&user, &tokens).expect("link");
}

/// Cost (EUR at spot prices) and kWh of charging at `kw` over `[from, to)`.
fn cost_of(
    spot: &BTreeMap<DateTime<Utc>, f64>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    kw: f64,
) -> (f64, f64) {
    let segs = [enode_sim::ChargeSegment {
        from,
        to,
        kwh: kw * (to - from).num_seconds() as f64 / 3600.0,
    }];
    smartcharged::demo::charged(&segs, spot, DateTime::<Utc>::MIN_UTC)
}

/// The price (EUR/MWh) at hour `h` as known at `known_until`: the real one
/// before it, else the planner's forecast rule (the same hour a week
/// earlier, else a day earlier).
fn known_price(
    spot: &BTreeMap<DateTime<Utc>, f64>,
    h: DateTime<Utc>,
    known_until: DateTime<Utc>,
) -> f64 {
    if h < known_until {
        if let Some(&p) = spot.get(&h) {
            return p;
        }
    }
    for back in [7, 1] {
        let t = h - TimeDelta::days(back);
        if t < known_until {
            if let Some(&p) = spot.get(&t) {
                return p;
            }
        }
    }
    spot.range(..known_until)
        .next_back()
        .map_or(0.0, |(_, &p)| p)
}

/// Hour start of `t`.
fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::DurationRound;
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// A strategy's charging of one session: blocks `[start, end)` at full power.
pub type Blocks = Vec<(DateTime<Utc>, DateTime<Utc>)>;

/// The minutes a session needs at full power (0 when at or over target).
pub fn minutes_needed(car: &Car, s: &Session) -> i64 {
    let kwh = (TARGET - s.soc).max(0.0) / 100.0 * car.battery_kwh;
    planner::charge_minutes(kwh, POWER_KW) as i64
}

/// Charging at once: from plug-in without pause until the target.
pub fn at_once(car: &Car, s: &Session) -> Blocks {
    let m = minutes_needed(car, s);
    if m == 0 {
        return Vec::new();
    }
    vec![(s.arrive, (s.arrive + TimeDelta::minutes(m)).min(s.depart))]
}

/// The quarter-hours from plug-in (rounded up to the quarter) to the
/// departure, with their price as known at plug-in.
fn quarters(spot: &BTreeMap<DateTime<Utc>, f64>, tz: Tz, s: &Session) -> Vec<(DateTime<Utc>, f64)> {
    let known = published_until(tz, s.arrive);
    let q = TimeDelta::minutes(15);
    let mut t = hour_of(s.arrive);
    while t < s.arrive {
        t += q;
    }
    let mut out = Vec::new();
    while t + q <= s.depart {
        out.push((t, known_price(spot, hour_of(t), known)));
        t += q;
    }
    out
}

/// The slot strategy (as evcc plans): the cheapest quarter-hours before
/// the departure, on the prices known at plug-in (forecast beyond them),
/// with no limit on blocks; the last, partial quarter charges its first
/// minutes. Equal prices go to the earlier quarter. If the quarters do not
/// hold the energy, it charges at once.
pub fn slots(spot: &BTreeMap<DateTime<Utc>, f64>, tz: Tz, car: &Car, s: &Session) -> Blocks {
    let need = minutes_needed(car, s);
    let mut qs = quarters(spot, tz, s);
    if need == 0 {
        return Vec::new();
    }
    if (qs.len() as i64) * 15 < need {
        return at_once(car, s);
    }
    qs.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let mut left = need;
    for (t, _) in qs {
        if left == 0 {
            break;
        }
        let m = left.min(15);
        chosen.push((t, t + TimeDelta::minutes(m)));
        left -= m;
    }
    chosen.sort();
    merge(chosen)
}

/// Joins touching blocks.
fn merge(sorted: Blocks) -> Blocks {
    let mut out: Blocks = Vec::new();
    for (a, b) in sorted {
        match out.last_mut() {
            Some(last) if last.1 == a => last.1 = b,
            _ => out.push((a, b)),
        }
    }
    out
}

/// The window strategy (as ev_smart_charging's continuous mode): the
/// cheapest single continuous window starting on a quarter-hour, on the
/// prices known at plug-in (forecast beyond them), ending by the
/// departure. Equal costs go to the earlier window. If no window fits, it
/// charges at once.
pub fn window(spot: &BTreeMap<DateTime<Utc>, f64>, tz: Tz, car: &Car, s: &Session) -> Blocks {
    let need = minutes_needed(car, s);
    if need == 0 {
        return Vec::new();
    }
    let known = published_until(tz, s.arrive);
    let len = TimeDelta::minutes(need);
    let forecast = |from: DateTime<Utc>| {
        // cost of [from, from + len) at the known prices
        let mut cost = 0.0;
        let mut t = from;
        while t < from + len {
            let next = (hour_of(t) + TimeDelta::hours(1)).min(from + len);
            cost += known_price(spot, hour_of(t), known) * (next - t).num_seconds() as f64;
            t = next;
        }
        cost
    };
    let mut best: Option<(f64, DateTime<Utc>)> = None;
    for (t, _) in quarters(spot, tz, s) {
        if t + len > s.depart {
            break;
        }
        let c = forecast(t);
        if best.is_none_or(|(b, _)| c < b - 1e-9) {
            best = Some((c, t));
        }
    }
    match best {
        Some((_, t)) => vec![(t, t + len)],
        None => at_once(car, s),
    }
}

/// The hindsight optimum: the exact planner on every real price of the
/// session, from plug-in to departure, with the daemon's constraints.
pub fn hindsight(
    spot: &BTreeMap<DateTime<Utc>, f64>,
    car: &Car,
    s: &Session,
    min_pause_minutes: Option<u32>,
) -> planner::Plan {
    let prices: Vec<PriceSlot> = spot
        .range(hour_of(s.arrive)..s.depart)
        .map(|(&t, &p)| PriceSlot {
            start: t,
            end: t + TimeDelta::hours(1),
            price_per_kwh: p / 1000.0,
        })
        .collect();
    let req = PlanRequest {
        now: s.arrive,
        deadline: s.depart,
        battery_kwh: car.battery_kwh,
        soc_percent: s.soc,
        target_percent: TARGET,
        max_power_kw: POWER_KW,
        efficiency: 1.0,
        min_soc_percent: 0.0,
        max_blocks: None,
        min_block_minutes: None,
        min_pause_minutes,
        finish_by_departure_minutes: None,
        charging_now: false,
        charge_limit_percent: None,
        opportunistic_price: None,
        tie_break: TieBreak::Later,
        prices,
    };
    planner::plan(&req).expect("valid hindsight request")
}

/// One strategy's totals over the sessions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// EUR at spot prices.
    pub cost: f64,
    /// kWh charged.
    pub kwh: f64,
    /// START + STOP commands.
    pub commands: usize,
    /// Sessions whose reachable target was missed at departure.
    pub missed: usize,
}

impl Totals {
    fn add_blocks(&mut self, spot: &BTreeMap<DateTime<Utc>, f64>, blocks: &Blocks) {
        for &(a, b) in blocks {
            let (c, k) = cost_of(spot, a, b, POWER_KW);
            self.cost += c;
            self.kwh += k;
        }
        self.commands += 2 * blocks.len();
    }
}

/// The year (or part of it) of one market, every strategy side by side.
#[derive(Debug, Clone)]
pub struct Report {
    /// The market.
    pub market: Market,
    /// Sessions simulated.
    pub sessions: usize,
    /// Sessions whose target is reachable at full power from plug-in.
    pub reachable: usize,
    /// The real daemon, from the simulator's charge segments.
    pub daemon: Totals,
    /// Every price known, same constraints.
    pub hindsight: Totals,
    /// From plug-in at full power.
    pub at_once: Totals,
    /// Cheapest quarter-hours.
    pub slots: Totals,
    /// Cheapest continuous window.
    pub window: Totals,
    /// Plans the daemon made.
    pub plans: usize,
    /// The simulator saw no command to an unplugged car and no expired token.
    pub clean: bool,
    /// The simulator's violation counters.
    pub violations: String,
    /// Sessions whose reachable target the daemon missed: (arrive, soc at departure).
    pub missed: Vec<(DateTime<Utc>, f64)>,
    /// One line per session: times, SoC, the daemon's and the hindsight
    /// cost and energy, the daemon's commands.
    pub detail: Vec<String>,
}

/// Compares the daemon's run with the other strategies on the same sessions.
pub fn report(
    market: Market,
    car: &Car,
    run: &DaemonRun,
    min_pause_minutes: Option<u32>,
) -> Report {
    let spot = market.spot();
    let tz = market.tz();
    let mut r = Report {
        market,
        sessions: car.sessions.len(),
        reachable: 0,
        daemon: Totals::default(),
        hindsight: Totals::default(),
        at_once: Totals::default(),
        slots: Totals::default(),
        window: Totals::default(),
        plans: run.plans,
        clean: run.clean,
        violations: run.violations.clone(),
        missed: Vec::new(),
        detail: Vec::new(),
    };
    for s in &car.sessions {
        let need = minutes_needed(car, s);
        let reachable = s.arrive + TimeDelta::minutes(need) <= s.depart;
        r.reachable += usize::from(reachable);
        let in_session: Vec<_> = run
            .segments
            .iter()
            .filter(|g| g.from < s.depart && g.to > s.arrive)
            .cloned()
            .collect();
        let (cost, kwh) = smartcharged::demo::charged(&in_session, &spot, s.arrive);
        r.daemon.cost += cost;
        r.daemon.kwh += kwh;
        r.daemon.commands += run
            .commands
            .iter()
            .filter(|c| c.0 >= s.arrive && c.0 <= s.depart)
            .count();
        let soc_out = s.soc + kwh / car.battery_kwh * 100.0;
        if reachable && soc_out < TARGET - 0.5 {
            r.daemon.missed += 1;
            r.missed.push((s.arrive, soc_out));
        }
        let h = hindsight(&spot, car, s, min_pause_minutes);
        let hb: Blocks = h.blocks.iter().map(|b| (b.start, b.end)).collect();
        let before = r.hindsight;
        r.hindsight.add_blocks(&spot, &hb);
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%a %m-%d %H:%M");
        r.detail.push(format!(
            "{} -> {}  soc {:>5.1}  daemon {:>6.3} EUR {:>5.1} kWh {} cmds  hindsight {:>6.3} EUR {:>5.1} kWh  ({:+.3})",
            local(s.arrive),
            local(s.depart),
            s.soc,
            cost,
            kwh,
            run.commands.iter().filter(|c| c.0 >= s.arrive && c.0 <= s.depart).count(),
            r.hindsight.cost - before.cost,
            r.hindsight.kwh - before.kwh,
            cost - (r.hindsight.cost - before.cost),
        ));
        // commands the API refused (a car that had just left, say), with
        // how long after this session's departure they went out
        for (t, action, result) in &run.commands {
            let next_arrival = car
                .sessions
                .iter()
                .map(|o| o.arrive)
                .find(|a| *a > s.depart)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if result != "ok" && *t >= s.arrive && *t < next_arrival {
                r.detail.push(format!(
                    "    {action} at {} refused ({result}): {:+} s after the departure",
                    t.with_timezone(&tz).format("%a %m-%d %H:%M:%S"),
                    (*t - s.depart).num_seconds()
                ));
            }
        }
        r.at_once.add_blocks(&spot, &at_once(car, s));
        r.slots.add_blocks(&spot, &slots(&spot, tz, car, s));
        r.window.add_blocks(&spot, &window(&spot, tz, car, s));
    }
    r
}

/// Commands per session.
pub fn per_session(t: &Totals, sessions: usize) -> f64 {
    t.commands as f64 / sessions.max(1) as f64
}

impl Report {
    /// Realized cost over the hindsight optimum, minus one (0.01 = 1 % more).
    pub fn gap(&self) -> f64 {
        self.daemon.cost / self.hindsight.cost - 1.0
    }

    /// The table rows of this market, one per strategy.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let n = self.sessions;
        let _ = writeln!(
            out,
            "{}: {} sessions ({} reachable), {:.0} kWh; the daemon made {} plans",
            self.market.name(),
            n,
            self.reachable,
            self.daemon.kwh,
            self.plans
        );
        let _ = writeln!(
            out,
            "  {:<28} {:>10} {:>9} {:>8} {:>12}",
            "strategy", "cost EUR", "vs best", "kWh", "cmds/session"
        );
        for (name, t) in [
            ("smartcharged (real daemon)", &self.daemon),
            ("hindsight optimum", &self.hindsight),
            ("at once", &self.at_once),
            ("cheapest 15-min slots", &self.slots),
            ("cheapest continuous window", &self.window),
        ] {
            // Charging at once needs no command: the car starts on plug-in.
            let cmds = if std::ptr::eq(t, &self.at_once) {
                "-".to_string()
            } else {
                format!("{:.2}", per_session(t, n))
            };
            let _ = writeln!(
                out,
                "  {name:<28} {:>10.2} {:>8.2}% {:>8.0} {cmds:>12}",
                t.cost,
                (t.cost / self.hindsight.cost - 1.0) * 100.0,
                t.kwh,
            );
        }
        let _ = writeln!(
            out,
            "  deadlines met: {}/{} reachable{}",
            self.reachable - self.daemon.missed,
            self.reachable,
            if self.clean {
                ""
            } else {
                "; SIMULATOR VIOLATIONS"
            }
        );
        out
    }

    /// The targets: within 2 % of the hindsight optimum, fewer commands per
    /// session than the slot strategy, every reachable deadline met, and a
    /// clean run. Returns what failed.
    pub fn misses(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.gap() > 0.02 {
            out.push(format!(
                "{}: realized {:.2} EUR is {:.2} % above the hindsight optimum {:.2} EUR",
                self.market.name(),
                self.daemon.cost,
                self.gap() * 100.0,
                self.hindsight.cost
            ));
        }
        if self.daemon.commands >= self.slots.commands {
            out.push(format!(
                "{}: {} commands, the slot strategy {}",
                self.market.name(),
                self.daemon.commands,
                self.slots.commands
            ));
        }
        if !self.missed.is_empty() {
            out.push(format!(
                "{}: reachable deadlines missed: {:?}",
                self.market.name(),
                self.missed
            ));
        }
        if !self.clean {
            out.push(format!(
                "{}: simulator violations: {}",
                self.market.name(),
                self.violations
            ));
        }
        out
    }
}

/// The min-pause value as a policy line.
pub fn pause_policy(min_pause_minutes: Option<u32>) -> String {
    min_pause_minutes
        .map(|m| format!("min_pause_minutes = {m}"))
        .unwrap_or_default()
}

/// Simulates `nights` nights of `market` with the real daemon and compares.
pub async fn simulate(
    market: Market,
    nights: u32,
    seed: u64,
    min_pause_minutes: Option<u32>,
) -> Report {
    let car = car(market, nights, seed);
    let run = run_daemon(market, &car, &pause_policy(min_pause_minutes)).await;
    report(market, &car, &run, min_pause_minutes)
}
