//! The fault matrix: the daemon over a simulated evening and night (3 users,
//! 12 vehicles, real DE-LU prices, paused time) with one fault per row,
//! active for a window that overlaps the evening plug-ins, then cleared.
//!
//! Every row asserts the same things: no task panicked and every user's
//! loop still polls after the fault is gone; shutdown succeeds; no request
//! came before a Retry-After; no user was lost (still `Active` in the
//! store, no refresh-token replay, no revoked grant); every deadline was
//! met (the fleet's charges are all feasible, even with a 45-minute gap);
//! and the episode was logged as a change of state, not per request: at
//! most two WARN lines for each kind of message, however many requests
//! failed. Each row prints its numbers.
//!
//! `SMARTCHARGED_LONG_TESTS=1` runs the long version: 8 users and 32
//! vehicles over a whole day, with a second fault window across the night's
//! block edges.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::Duration;

use crate::common::fleet;
use chrono::{DateTime, TimeDelta, Utc};
use clock::Clock;
use enode_sim::{Fault, FaultKind, Target, Trigger};
use smartcharged::daemon::fleet::FleetEvent;
use smartcharged::store::Store;
use smartcharged::users::UserStatus;

/// Whether the long version was asked for.
fn long() -> bool {
    std::env::var_os("SMARTCHARGED_LONG_TESTS").is_some_and(|v| v != "0" && !v.is_empty())
}

/// The fleet size: (users, vehicles).
fn size() -> (usize, usize) {
    if long() {
        (8, 32)
    } else {
        (3, 12)
    }
}

/// When the simulation ends, from [`fleet::day_start`] (noon UTC): after
/// the 06:05 UTC departures, or a whole day in the long version.
fn run_for() -> TimeDelta {
    if long() {
        TimeDelta::hours(24)
    } else {
        TimeDelta::hours(18) + TimeDelta::minutes(15)
    }
}

/// The fault windows (start offset from noon UTC, length): 17:30-18:15 UTC,
/// while the cars plug in (16:00-20:00 UTC) and get their first plans and
/// STOPs; the long version adds 00:30-01:15 UTC, across block edges.
fn windows(len: TimeDelta) -> Vec<(TimeDelta, TimeDelta)> {
    let mut w = vec![(TimeDelta::minutes(5 * 60 + 30), len)];
    if long() {
        w.push((TimeDelta::minutes(12 * 60 + 30), len));
    }
    w
}

/// The default `[enode] request_timeout` of the test config.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Threads (test names) on which a panic happened. The paused-time
/// runtime runs the daemon and the simulator on the test's own thread, so
/// a panicking task shows up under its row.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn watch_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            PANICS.lock().unwrap_or_else(|e| e.into_inner()).push(name);
            previous(info)
        }));
    });
}

fn panics_here() -> usize {
    let me = std::thread::current().name().unwrap_or("?").to_owned();
    PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|n| **n == me)
        .count()
}

/// What a row changes in the world, besides its fault rules.
#[derive(Default)]
struct Setup {
    /// Access token lifetime in the simulator (default one hour).
    token_lifetime: Option<Duration>,
    /// Users linked with vendor BMW (the first ones); the rest are TESLA.
    bmw_users: usize,
}

/// A daemon on paused time against a simulator, with its logs.
struct Run {
    sim: enode_sim::Sim,
    daemon: Option<smartcharged::daemon::run::Daemon>,
    events: tokio::sync::mpsc::UnboundedReceiver<FleetEvent>,
    /// The true time (the simulator's).
    clock: Clock,
    /// The daemon's clock: the same instants, unless a row steps it.
    daemon_clock: Clock,
    store: PathBuf,
    /// A copy of the price file the daemon reads.
    prices: PathBuf,
    config_text: String,
    logs: common::Capture,
    _log: tracing::subscriber::DefaultGuard,
    dir: tempfile::TempDir,
}

impl Run {
    async fn start(setup: Setup) -> Run {
        watch_panics();
        let logs = common::Capture::default();
        let writer = logs.clone();
        let log = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish(),
        );
        let (users, vehicles) = size();
        let mut scenario = fleet::scenario(users, vehicles);
        if let Some(l) = setup.token_lifetime {
            scenario.access_token_lifetime_secs = l.as_secs();
        }
        let clock = Clock::starting_at(fleet::day_start());
        // Created at the same tokio instant: equal until a row steps it.
        let daemon_clock = Clock::starting_at(fleet::day_start());
        let policy = fleet::wallboxes(&scenario);
        let sim = enode_sim::spawn(scenario, clock.clone()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let bmw: Vec<String> = sim
            .handle
            .user_ids()
            .into_iter()
            .take(setup.bmw_users)
            .collect();
        fleet::link_all_with(&sim, &store, clock.now(), |id| {
            if bmw.iter().any(|b| b == id) {
                "BMW"
            } else {
                "TESLA"
            }
        });
        let repo_prices =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prices/DE-LU-2023-2025.csv");
        let prices = dir.path().join("prices.csv");
        std::fs::copy(&repo_prices, &prices).unwrap();
        let config_text = fleet::config_text(&sim, &store, &policy).replace(
            &repo_prices.display().to_string(),
            &prices.display().to_string(),
        );
        assert!(config_text.contains(&prices.display().to_string()));
        let (daemon, events) = fleet::restart(&config_text, dir.path(), &daemon_clock).await;
        Run {
            sim,
            daemon: Some(daemon),
            events,
            clock,
            daemon_clock,
            store,
            prices,
            config_text,
            logs,
            _log: log,
            dir,
        }
    }

    fn at(&self, offset: TimeDelta) -> DateTime<Utc> {
        fleet::day_start() + offset
    }

    async fn until(&self, offset: TimeDelta) {
        self.clock.sleep_until(self.at(offset)).await;
    }

    /// Shuts the daemon down (and checks it went well) and starts a new
    /// one on the same store.
    async fn restart(&mut self) {
        let d = self.daemon.take().expect("a daemon runs");
        d.shutdown().await.expect("shutdown");
        let (daemon, events) =
            fleet::restart(&self.config_text, self.dir.path(), &self.daemon_clock).await;
        self.daemon = Some(daemon);
        self.events = events;
    }
}

/// A fault rule on every request to `target` until removed.
fn always(kind: FaultKind, target: Target) -> Fault {
    Fault {
        kind,
        user: None,
        target,
        trigger: Trigger::Always,
    }
}

/// The WARN lines of a log, grouped by what they say: the component and
/// kind of an episode (`what`, `kind`), else the message.
fn warn_lines(text: &str) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for line in text.lines().filter(|l| l.contains(" WARN ")) {
        let field = |k: &str| {
            let pat = format!(" {k}=\"");
            line.find(&pat).map(|i| {
                let rest = &line[i + pat.len()..];
                rest[..rest.find('"').unwrap_or(rest.len())].to_owned()
            })
        };
        let key = match (field("what"), field("kind")) {
            (Some(w), Some(k)) => format!("{w}: {k}"),
            _ => {
                // "<time>  WARN span{..}: target: message field=..": the
                // message is the first part with a space in it.
                let after = line.split(" WARN ").nth(1).unwrap_or(line);
                let parts: Vec<&str> = after.split(": ").collect();
                let first = parts.iter().position(|p| p.contains(' ')).unwrap_or(0);
                let msg = parts[first..].join(": ");
                msg.split(' ')
                    .take_while(|w| !w.contains('='))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        *by.entry(key).or_insert(0) += 1;
    }
    by
}

/// What one row saw, printed and checked.
#[derive(Debug)]
struct Outcome {
    /// Answers made by fault rules, by kind.
    injected: BTreeMap<String, u64>,
    /// Requests the simulator received while a fault was active.
    requests_in_windows: u64,
    /// WARN lines by what they say.
    warns: BTreeMap<String, usize>,
    /// "recovered" lines.
    recovered: usize,
    /// Failures counted by the episodes that recovered, by component and kind.
    failures: BTreeMap<String, u64>,
    /// Vehicles that reached their target by the deadline, of all.
    deadlines: (usize, usize),
    /// The lowest margin over the target at departure, percentage points.
    worst_margin: f64,
}

/// Runs one row: the fleet, with `window` run for each fault window
/// (`start`, `len`: offsets from noon UTC; it returns when the window is
/// over and its faults are cleared). Checks the invariants every row
/// shares and returns the numbers.
async fn row(
    name: &str,
    setup: Setup,
    windows: Vec<(TimeDelta, TimeDelta)>,
    window: impl AsyncFn(&mut Run, TimeDelta, TimeDelta),
) -> Outcome {
    let mut r = Run::start(setup).await;
    let mut in_windows = 0;
    let mut last_clear = None;
    for (start, len) in windows {
        r.until(start).await;
        let before = r.sim.handle.stats().total_requests;
        window(&mut r, start, len).await;
        in_windows += r.sim.handle.stats().total_requests - before;
        last_clear = Some(r.clock.now() - fleet::day_start());
    }
    // Every user's loop is alive: it polls again after the fault is gone.
    let clear = last_clear.expect("a window");
    r.until(clear + TimeDelta::minutes(20)).await;
    let polls_after_clear = r.sim.handle.stats().user_requests;
    assert!(
        run_for() - clear >= TimeDelta::minutes(60),
        "{name}: too little time after the fault"
    );
    r.until(run_for()).await;
    let stats = r.sim.handle.stats();
    for user in r.sim.handle.user_ids() {
        let then = polls_after_clear.get(&user).copied().unwrap_or(0);
        let now = stats.user_requests.get(&user).copied().unwrap_or(0);
        assert!(
            // At least 40 minutes remain: two polls even at the 15-minute
            // slow interval of a fleet with nothing plugged in.
            now >= then + 2,
            "{name}: {user} sent {} requests in the hours after the fault was cleared",
            now - then
        );
    }
    let daemon = r.daemon.take().expect("a daemon runs");
    daemon.shutdown().await.expect("shutdown succeeds");
    let _ = fleet::drain_commands(&mut r.events);
    assert_eq!(panics_here(), 0, "{name}: a task panicked");

    // Nobody waited on less than a Retry-After; no user was lost.
    assert_eq!(
        stats.violations.retry_after_ignored, 0,
        "{name}: {:?}",
        stats.recent_violations
    );
    assert_eq!(
        stats.violations.refresh_replay, 0,
        "{name}: {:?}",
        stats.recent_violations
    );
    assert_eq!(stats.tokens.grants_revoked, 0, "{name}");
    assert_eq!(stats.violations.command_unplugged, 0, "{name}");
    let store = Store::open(&r.store).unwrap();
    for u in store.users().unwrap() {
        assert_eq!(u.status, UserStatus::Active, "{name}: {} lost", u.id);
    }
    drop(store);

    // Deadlines: every car charges at most 60 kWh at 7.4 kW or more from
    // a plug-in at 21:00 CET at the latest, so every charge is feasible
    // with an hour to spare even after a 45-minute fault.
    let mut met = 0;
    let mut worst = f64::INFINITY;
    let ids = r.sim.handle.vehicle_ids();
    for id in &ids {
        let v = r.sim.handle.vehicle(id).unwrap();
        let want = 80.0f64.min(v.charge_limit);
        worst = worst.min(v.soc - want);
        if v.soc >= want - 0.5 {
            met += 1;
        }
    }

    // One line per change of state, not one per failed request.
    let text = r.logs.text();
    let warns = warn_lines(&text);
    let recovered_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" INFO ") && l.contains("recovered"))
        .collect();
    let mut failures = BTreeMap::new();
    for l in &recovered_lines {
        let field = |k: &str| {
            let pat = format!(" {k}=");
            l.find(&pat).map(|i| {
                let rest = &l[i + pat.len()..];
                match rest.strip_prefix('"') {
                    Some(q) => q[..q.find('"').unwrap_or(q.len())].to_owned(),
                    None => rest[..rest.find(' ').unwrap_or(rest.len())].to_owned(),
                }
            })
        };
        let key = format!(
            "{}: {}",
            field("what").unwrap_or_default(),
            field("kind").unwrap_or_default()
        );
        let n: u64 = field("failures").and_then(|n| n.parse().ok()).unwrap_or(0);
        *failures.entry(key).or_insert(0) += n;
    }
    let recovered = recovered_lines.len();
    let out = Outcome {
        injected: stats.injected.clone(),
        requests_in_windows: in_windows,
        warns,
        recovered,
        failures,
        deadlines: (met, ids.len()),
        worst_margin: worst,
    };
    println!(
        "{name}: fault answers {:?}; requests during the windows {}; failures per episode {:?}; \
         WARN lines {:?}; recovered lines {}; deadlines met {}/{} (worst margin {:+.2} points)",
        out.injected,
        out.requests_in_windows,
        out.failures,
        out.warns,
        out.recovered,
        out.deadlines.0,
        out.deadlines.1,
        out.worst_margin
    );
    assert_eq!(met, ids.len(), "{name}: deadlines missed: {out:?}");
    for (what, n) in &out.warns {
        assert!(
            *n <= 2,
            "{name}: {n} WARN lines for {what:?}:\n{}",
            text.lines()
                .filter(|l| l.contains(" WARN "))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    out
}

/// A row whose fault must have failed requests and produced an episode
/// that opened (WARN) and closed ("recovered").
fn assert_episode(name: &str, out: &Outcome, injected: &str, what: &str) {
    if !injected.is_empty() {
        assert!(
            out.injected.get(injected).copied().unwrap_or(0) >= 3,
            "{name}: the fault hardly fired: {out:?}"
        );
    }
    assert!(
        out.warns.keys().any(|k| k.starts_with(what)),
        "{name}: no WARN for {what}: {out:?}"
    );
    assert!(out.recovered >= 1, "{name}: no recovery logged: {out:?}");
}

/// The plain window: `faults` from its start to its end.
async fn faults_for(r: &mut Run, start: TimeDelta, len: TimeDelta, faults: &[Fault]) {
    r.until(start).await;
    let ids: Vec<_> = faults
        .iter()
        .map(|f| r.sim.handle.add_fault(f.clone()))
        .collect();
    r.until(start + len).await;
    for id in ids {
        assert!(r.sim.handle.remove_fault(id), "an Always rule stays");
    }
}

macro_rules! api_row {
    ($test:ident, $kind:expr, $injected:expr) => {
        #[tokio::test(start_paused = true)]
        async fn $test() {
            let name = stringify!($test);
            let fault = [always($kind, Target::Api)];
            let out = row(
                name,
                Setup::default(),
                windows(TimeDelta::minutes(45)),
                async |r: &mut Run, start, len| faults_for(r, start, len, &fault).await,
            )
            .await;
            assert_episode(name, &out, $injected, "enode requests");
        }
    };
}
api_row!(
    rate_limited_with_retry_after,
    FaultKind::RateLimit {
        retry_after_secs: Some(120)
    },
    "rate_limit"
);
api_row!(
    rate_limited_without_retry_after,
    FaultKind::RateLimit {
        retry_after_secs: None
    },
    "rate_limit"
);
api_row!(
    server_error_500,
    FaultKind::ServerError {
        status: 500,
        retry_after_secs: None
    },
    "server_error"
);
api_row!(
    server_error_502,
    FaultKind::ServerError {
        status: 502,
        retry_after_secs: None
    },
    "server_error"
);
api_row!(
    server_error_503,
    FaultKind::ServerError {
        status: 503,
        retry_after_secs: None
    },
    "server_error"
);
api_row!(
    server_error_503_with_retry_after,
    FaultKind::ServerError {
        status: 503,
        retry_after_secs: Some(90)
    },
    "server_error"
);
api_row!(
    timeouts,
    FaultKind::Latency {
        millis: (REQUEST_TIMEOUT + Duration::from_secs(10)).as_millis() as u64
    },
    ""
);
api_row!(
    connection_resets,
    FaultKind::ConnectionReset,
    "connection_reset"
);
api_row!(
    oversized_bodies,
    FaultKind::OversizedBody { bytes: 8 << 20 },
    "oversized_body"
);

/// Bodies that are not JSON (a proxy's HTML page) in the first half of the
/// window, then JSON of the wrong shape (an array whose elements are not
/// vehicles, which reads as "no vehicles").
#[tokio::test(start_paused = true)]
async fn malformed_bodies() {
    let name = "malformed_bodies";
    let html = [always(FaultKind::MalformedBody { body: None }, Target::Api)];
    let shape = [always(
        FaultKind::MalformedBody {
            body: Some(r#"[{"id": 42, "chargeState": "full"}]"#.into()),
        },
        Target::Api,
    )];
    let out = row(
        name,
        Setup::default(),
        windows(TimeDelta::minutes(45)),
        async |r: &mut Run, start, len| {
            let half = len / 2;
            faults_for(r, start, half, &html).await;
            faults_for(r, start + half, len - half, &shape).await;
        },
    )
    .await;
    assert_episode(name, &out, "malformed_body", "enode requests");
}

/// Tokens that last 30 minutes, so a 30-minute fault on the token endpoint
/// meets every user's refresh and the access tokens run out during it.
fn short_tokens() -> Setup {
    Setup {
        token_lifetime: Some(Duration::from_secs(1800)),
        ..Setup::default()
    }
}

/// The token endpoint answers 500 for 30 minutes: refreshes fail and the
/// access tokens expire, so the users' loops wait for a token; afterwards
/// the old refresh tokens still work (nothing was rotated) and no user is
/// lost.
#[tokio::test(start_paused = true)]
async fn token_endpoint_down() {
    let name = "token_endpoint_down";
    let fault = [always(
        FaultKind::ServerError {
            status: 500,
            retry_after_secs: None,
        },
        Target::Token,
    )];
    let out = row(
        name,
        short_tokens(),
        windows(TimeDelta::minutes(30)),
        async |r: &mut Run, start, len| faults_for(r, start, len, &fault).await,
    )
    .await;
    assert_episode(name, &out, "server_error", "token refresh");
}

/// The token endpoint answers 40 s late (after rotating): more than the
/// 20 s `request_timeout`, less than the 120 s `token_timeout`. The daemon
/// waits for the answer, so nothing fails and no refresh is replayed.
#[tokio::test(start_paused = true)]
async fn token_endpoint_slow() {
    let name = "token_endpoint_slow";
    let fault = [always(
        FaultKind::Latency {
            millis: (REQUEST_TIMEOUT * 2).as_millis() as u64,
        },
        Target::Token,
    )];
    let out = row(
        name,
        short_tokens(),
        windows(TimeDelta::minutes(30)),
        async |r: &mut Run, start, len| {
            let before = r.sim.handle.stats().tokens.refresh_token;
            faults_for(r, start, len, &fault).await;
            let (users, _) = size();
            let refreshed = r.sim.handle.stats().tokens.refresh_token - before;
            assert!(
                refreshed as usize >= users,
                "{refreshed} slow refreshes in the window"
            );
        },
    )
    .await;
    assert!(
        !out.warns.keys().any(|k| k.starts_with("token refresh")),
        "{name}: a slow answer counted as a failure: {out:?}"
    );
}

/// The price file turns into garbage half an hour after the start; the
/// daemon is restarted while it is (a restart while the file is missing
/// fails config validation, exit 78); then the file disappears, until the
/// last two hours of the run (16 hours; 22 in the long version). It keeps the
/// prices it had (in memory, then from the store after the restart),
/// plans every plug-in and meets every deadline, and says once per daemon
/// that fetching fails.
#[tokio::test(start_paused = true)]
async fn price_provider_down() {
    let name = "price_provider_down";
    let len = run_for() - TimeDelta::minutes(120);
    let out = row(
        name,
        Setup::default(),
        vec![(TimeDelta::minutes(30), len)],
        async |r: &mut Run, start, len| {
            std::fs::write(&r.prices, "<html>price service maintenance</html>\n").unwrap();
            // 15:00 UTC, before the plug-ins: the new daemon has prices
            // only from the store.
            r.until(start + TimeDelta::hours(2) + TimeDelta::minutes(30))
                .await;
            r.restart().await;
            r.until(start + TimeDelta::hours(3)).await;
            std::fs::remove_file(&r.prices).unwrap();
            r.until(start + len).await;
            let planned: std::collections::BTreeSet<String> =
                std::iter::from_fn(|| r.events.try_recv().ok())
                    .filter_map(|e| match e {
                        FleetEvent::Planned { vehicle, .. } => Some(vehicle),
                        FleetEvent::Command(_) => None,
                    })
                    .collect();
            assert_eq!(
                planned.len(),
                r.sim.handle.vehicle_ids().len(),
                "vehicles planned after the restart: {planned:?}"
            );
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prices/DE-LU-2023-2025.csv"),
                &r.prices,
            )
            .unwrap();
        },
    )
    .await;
    assert_episode(name, &out, "", "price fetch");
}

/// The daemon's wall clock (not Enode's) steps an hour ahead at 17:30 UTC
/// and back at 18:15, as an NTP step or a resume from suspend does; in the
/// long version it also steps an hour back at 00:30 and forward again at
/// 01:15. Tokens it holds then look longer or shorter lived than they are,
/// and timers fire early or late; it must lose no user and meet every
/// deadline.
#[tokio::test(start_paused = true)]
async fn wall_clock_jumps() {
    let name = "wall_clock_jumps";
    let out = row(
        name,
        Setup::default(),
        windows(TimeDelta::minutes(45)),
        async |r: &mut Run, start, len| {
            let step = if start < TimeDelta::hours(12) {
                TimeDelta::hours(1)
            } else {
                TimeDelta::hours(-1)
            };
            assert!(r.daemon_clock.jump(step));
            r.until(start + len).await;
            assert!(r.daemon_clock.jump(-step));
            assert_eq!(r.daemon_clock.now(), r.clock.now());
        },
    )
    .await;
    // A step is not a failure of anything the daemon talks to.
    assert_eq!(out.injected.values().sum::<u64>(), 0);
}

/// Enode reports the TESLA vendor down (`GET /health/vendors`: OUTAGE)
/// for the window, while one user is linked with BMW. Once the daemon's
/// next vendor-health look has seen it, the TESLA users send nothing at
/// all (no poll, no command) until it is reported up again; the BMW user
/// goes on polling; afterwards every user polls again and every deadline
/// is met. The outage and the recovery are logged once each.
#[tokio::test(start_paused = true)]
async fn vendor_reported_down() {
    let name = "vendor_reported_down";
    let lines = |r: &Run, what: &str| r.logs.text().lines().filter(|l| l.contains(what)).count();
    let windows_seen = std::cell::Cell::new(0);
    row(
        name,
        Setup {
            bmw_users: 1,
            ..Setup::default()
        },
        windows(TimeDelta::minutes(45)),
        async |r: &mut Run, start, len| {
            let n = windows_seen.get() + 1;
            windows_seen.set(n);
            r.until(start).await;
            r.sim.handle.set_vendor_status("TESLA", "OUTAGE");
            // The next look at the health report, and a request already
            // under way then.
            let look = smartcharged::daemon::vendors::CHECK_EVERY + Duration::from_secs(60);
            r.clock.sleep(look).await;
            assert_eq!(lines(r, "reports the vendor down"), n, "{name}");
            let users = r.sim.handle.user_ids();
            let bmw = users[0].clone();
            let before = r.sim.handle.stats().user_requests;
            r.until(start + len).await;
            let after = r.sim.handle.stats().user_requests;
            let sent = |u: &String| {
                after.get(u).copied().unwrap_or(0) - before.get(u).copied().unwrap_or(0)
            };
            for u in &users {
                if *u == bmw {
                    assert!(sent(u) >= 1, "{name}: the BMW user {u} stopped too");
                } else {
                    assert_eq!(sent(u), 0, "{name}: {u} sent requests while TESLA was down");
                }
            }
            r.sim.handle.set_vendor_status("TESLA", "READY");
            r.clock.sleep(look).await;
            assert_eq!(lines(r, "reports the vendor down"), n, "{name}");
            assert_eq!(lines(r, "the vendor is up again"), n, "{name}");
        },
    )
    .await;
    assert_eq!(windows_seen.get(), windows(TimeDelta::minutes(45)).len());
}
