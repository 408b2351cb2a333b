//! Hostile and unlucky input that once lost users, doubled work or flooded
//! the log, each against enode-sim on paused time: a slow token endpoint,
//! absurd token lifetimes, ids that change URL paths, a relink of an
//! active user, an Enode policy that will not turn off, polls that rewrote
//! the store, and failures that logged one line each.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use crate::common::fleet;
use clock::Clock;
use enode_sim::{Scenario, Target, UserSpec};
use smartcharged::daemon::tokens::TokenKeeper;
use smartcharged::enode::Client;
use smartcharged::store::Store;
use smartcharged::users::{User, UserId, UserStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn users_scenario(n: usize, lifetime: Duration) -> Scenario {
    Scenario {
        access_token_lifetime_secs: lifetime.as_secs(),
        users: (0..n).map(|i| UserSpec::new(format!("u{i:03}"))).collect(),
        ..Scenario::default()
    }
}

/// A keeper over `n` freshly linked users of a new simulator.
async fn keeper_with(
    n: usize,
    lifetime: Duration,
    tune: impl FnOnce(&mut smartcharged::config::EnodeConfig),
) -> (
    enode_sim::Sim,
    std::sync::Arc<TokenKeeper>,
    Store,
    Vec<UserId>,
    Clock,
    tempfile::TempDir,
) {
    let clock = Clock::starting_at(common::t0());
    let sim = enode_sim::spawn(users_scenario(n, lifetime), clock.clone())
        .await
        .unwrap();
    let mut config = common::enode_config(&sim);
    tune(&mut config);
    let client = Client::new(&config, clock.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let ids: Vec<UserId> = (0..n)
        .map(|i| {
            let id = UserId::new(format!("u{i:03}")).unwrap();
            let user = User {
                id: id.clone(),
                status: UserStatus::Active,
                linked_at: clock.now(),
                vendor: None,
            };
            let tokens = common::granted(&sim, id.as_str(), clock.now());
            store.save_linked_user(&user, &tokens).unwrap();
            id
        })
        .collect();
    let keeper = TokenKeeper::new(store.clone(), client, clock.clone(), common::token_config());
    keeper.load().unwrap();
    (sim, keeper, store, ids, clock, dir)
}

/// A token endpoint slower than the API timeout: the keeper waits for the
/// answer instead of abandoning a refresh the server has already rotated
/// (which made the next attempt a replay, and the server revoked the grant).
#[tokio::test(start_paused = true)]
async fn a_slow_token_endpoint_loses_no_user() {
    let (sim, keeper, store, ids, clock, _dir) = keeper_with(3, Duration::from_secs(600), |c| {
        c.request_timeout = Duration::from_secs(5);
        c.token_timeout = Duration::from_secs(120);
    })
    .await;
    sim.handle
        .add_latency(Target::Token, Duration::from_secs(30));
    run_keeper_for(&keeper, &clock, Duration::from_secs(4 * 600)).await;
    let stats = sim.handle.stats();
    assert!(stats.tokens.refresh_token >= 9, "{:?}", stats.tokens);
    assert_eq!(
        stats.violations.refresh_replay, 0,
        "{:?}",
        stats.recent_violations
    );
    assert_eq!(stats.tokens.grants_revoked, 0);
    assert_all_active(&store, &ids);
}

/// `expires_in: 0` used to make the keeper refresh in a tight loop (about
/// 9,000 refreshes in 6 s); lifetimes are clamped and refreshes floored.
#[tokio::test(start_paused = true)]
async fn a_zero_token_lifetime_does_not_storm() {
    let (sim, keeper, store, ids, clock, _dir) =
        keeper_with(3, Duration::from_secs(3600), |_| {}).await;
    sim.handle.set_access_token_lifetime(Duration::ZERO);
    for id in &ids {
        keeper.refresh(id, None).await.unwrap();
    }
    run_keeper_for(&keeper, &clock, Duration::from_secs(600)).await;
    let refreshes = sim.handle.stats().tokens.refresh_token;
    // At most one refresh per user every 30 s (the floor), plus the first.
    assert!(refreshes <= 3 * (600 / 30 + 1), "{refreshes} refreshes");
    assert!(refreshes >= 3 * 5, "{refreshes} refreshes");
    assert_all_active(&store, &ids);
}

/// Users linked together (same expiry) refresh at different instants, not
/// in the same whole second, so one crash in the rotation window cannot
/// cost them all.
#[tokio::test(start_paused = true)]
async fn refreshes_of_users_linked_together_are_spread() {
    let (_sim, keeper, store, ids, clock, _dir) =
        keeper_with(200, Duration::from_secs(3600), |_| {}).await;
    run_keeper_for(&keeper, &clock, Duration::from_secs(3600)).await;
    let expiries: HashSet<_> = ids
        .iter()
        .map(|id| store.tokens(id).unwrap().unwrap().expires_at)
        .collect();
    assert!(
        expiries.len() >= 190,
        "only {} distinct refresh instants for 200 users",
        expiries.len()
    );
}

/// Runs the keeper's refresh loop for `span` of simulated time, then stops it.
async fn run_keeper_for(keeper: &std::sync::Arc<TokenKeeper>, clock: &Clock, span: Duration) {
    let cancel = CancellationToken::new();
    let run = tokio::spawn(keeper.clone().run(cancel.clone()));
    clock.sleep(span).await;
    cancel.cancel();
    run.await.unwrap();
}

/// Every user is still active in the store: none was given up.
fn assert_all_active(store: &Store, ids: &[UserId]) {
    for id in ids {
        assert_eq!(store.user(id).unwrap().unwrap().status, UserStatus::Active);
    }
}

/// Sends one raw request (the path exactly as given, not normalised the
/// way a URL library would) and returns the status code.
async fn raw_status(addr: std::net::SocketAddr, method: &str, path: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

/// A daemon that serves its HTTP listener, on the fleet test setup.
async fn daemon_with_http(scenario: Scenario) -> (fleet::Running, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let r = fleet::start_with(scenario, "", &format!("\n[http]\nlisten = \"{addr}\"\n")).await;
    r.daemon.serve_http(listener);
    let (admin, allowed) = smartcharged::admin::bind(&r.daemon.admin_config())
        .await
        .unwrap();
    r.daemon.serve_admin(admin, allowed);
    (r, addr)
}

/// The status of one raw request on the admin socket (link flows start
/// there, not on the TCP listener).
async fn admin_status(r: &fleet::Running, method: &str, path: &str) -> u16 {
    let mut s = tokio::net::UnixStream::connect(&r.daemon.admin_config().socket)
        .await
        .unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

/// Ids that would change Enode's URL path (`..` removed a segment: the
/// daemon sent `POST /users/link`) or the log and store (NUL, CR/LF, only
/// spaces, 10 kB) are refused with 400 before anything is sent to Enode.
/// Vendors are checked against the spec's list and sent in its spelling.
#[tokio::test(start_paused = true)]
async fn link_requests_with_bad_ids_or_vendors_are_refused() {
    let (r, addr) = daemon_with_http(fleet::scenario(1, 1)).await;
    // The TCP listener starts no link flow.
    assert_eq!(raw_status(addr, "POST", "/link/alice").await, 404);
    let long = "x".repeat(10_000);
    for path in [
        "/v1/link/..".to_string(),
        "/v1/link/.".into(),
        "/v1/link/%2E%2E".into(),
        "/v1/link/%2e".into(),
        "/v1/link/a%00b".into(),
        "/v1/link/a%0D%0Ab".into(),
        "/v1/link/%20%20".into(),
        "/v1/link/a%2Fb".into(),
        format!("/v1/link/{long}"),
        "/v1/link/alice?vendor=FORD".into(),
        "/v1/link/alice?vendor=tes%0Ala".into(),
        "/v1/link/alice?language=x".into(),
    ] {
        let status = admin_status(&r, "POST", &path).await;
        assert!(
            (400..500).contains(&status),
            "{}: {status}",
            &path[..path.len().min(40)]
        );
    }
    let stats = r.sim.handle.stats();
    let link_requests: u64 = stats
        .requests
        .iter()
        .filter(|(route, _)| route.contains("link"))
        .map(|(_, by_status)| by_status.values().sum::<u64>())
        .sum();
    assert_eq!(link_requests, 0, "{:?}", stats.requests);

    // A vendor in any case is sent as the spec spells it.
    assert_eq!(
        admin_status(&r, "POST", "/v1/link/alice?vendor=tesla").await,
        200
    );
    let stats = r.sim.handle.stats();
    assert_eq!(
        stats.count("POST /users/{userId}/link", 200),
        1,
        "{:?}",
        stats.requests
    );
    r.daemon.shutdown().await.unwrap();
}

/// Linking an active user again through the daemon keeps one poll loop and
/// one refresh loop (a second of each doubled the polling and refreshed the
/// old grant beside the new one).
#[tokio::test(start_paused = true)]
async fn relinking_an_active_user_does_not_double_its_polling() {
    let (r, _addr) = daemon_with_http(fleet::scenario(2, 2)).await;
    // Polls in a quiet afternoon hour (no plug-in before 16:00), before
    // the relink.
    r.clock.sleep(Duration::from_secs(600)).await;
    let before0 = r.sim.handle.stats().count_route("GET /vehicles");
    r.clock.sleep(Duration::from_secs(3600)).await;
    let before = r.sim.handle.stats().count_route("GET /vehicles") - before0;

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let admin = smartcharged::admin::client::Client::new(&r.daemon.admin_config().socket).unwrap();
    let started: serde_json::Value = admin
        .post("/v1/link/user-0", &serde_json::json!({}))
        .await
        .unwrap();
    let authorize = url::Url::parse(started["authorize_url"].as_str().unwrap()).unwrap();
    let callback = common::consent(&authorize).await;
    let done = http.get(callback).send().await.unwrap();
    assert!(done.status().is_success(), "{}", done.text().await.unwrap());

    let after0 = r.sim.handle.stats().count_route("GET /vehicles");
    r.clock.sleep(Duration::from_secs(3600)).await;
    let after = r.sim.handle.stats().count_route("GET /vehicles") - after0;
    assert!(
        after <= before + 1,
        "polls in an hour: {before} before the relink, {after} after"
    );
    let stats = r.sim.handle.stats();
    assert_eq!(
        stats.violations.refresh_replay, 0,
        "{:?}",
        stats.recent_violations
    );
    assert_eq!(
        stats.violations.invalid_grant, 0,
        "{:?}",
        stats.recent_violations
    );
    r.daemon.shutdown().await.unwrap();
    let store = Store::open(&r.store).unwrap();
    let u = store
        .user(&UserId::new("user-0").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(u.status, UserStatus::Active);
}

/// Enode's smart charging that stays on although the daemon turns it off
/// (a vendor that ignores it) gets three PUTs and one warning, not a PUT on
/// every poll.
#[tokio::test(start_paused = true)]
async fn a_take_over_that_does_not_stick_is_bounded() {
    let mut scenario = fleet::scenario(1, 1);
    scenario.users[0].vehicles[0].smart_charging.enabled = true;
    let (logs, _log) = common::Capture::this_thread();
    let r = fleet::start(scenario, "take_over_enode_smart_charging = true\n").await;
    let car = r.sim.handle.vehicle_ids()[0].clone();
    // The vendor turns it back on at once, every time.
    let sim = r.sim.handle.clone();
    let clock = r.clock.clone();
    let car2 = car.clone();
    let stubborn = tokio::spawn(async move {
        loop {
            sim.set_smart_charging(&car2, true, None).unwrap();
            clock.sleep(Duration::from_secs(5)).await;
        }
    });
    r.clock.sleep(Duration::from_secs(12 * 3600)).await;
    stubborn.abort();
    let puts = r
        .sim
        .handle
        .stats()
        .count_route("PUT /vehicles/{vehicleId}/smart-charging-policy");
    r.daemon.shutdown().await.unwrap();
    // Three before giving up, and three more after the evening plug-in.
    assert!((3..=6).contains(&puts), "{puts} PUTs in 12 hours");
    let text = logs.text();
    let gave_up = text.matches("Enode smart charging stays enabled").count();
    assert!((1..=2).contains(&gave_up), "{gave_up} give-up lines");
}

/// A plugged-in vehicle's polls no longer rewrite and flush its control
/// state each time (its SoC and the time of the poll change at every one):
/// the store is written when something that must survive a crash changes.
#[tokio::test(start_paused = true)]
async fn polls_of_a_charging_vehicle_do_not_rewrite_the_store() {
    let mut scenario = fleet::scenario(1, 1);
    let car = &mut scenario.users[0].vehicles[0];
    car.events.clear();
    car.plugged_in = true;
    car.charge_on_plug_in = true;
    // Polled often, so the polls would show in the flushes.
    let r = fleet::start(scenario, "poll_fast = \"2m\"\n").await;
    r.clock.sleep(Duration::from_secs(600)).await;
    let flushes0 = r.daemon.store().flush_count();
    r.clock.sleep(Duration::from_secs(6 * 3600)).await;
    let flushes = r.daemon.store().flush_count() - flushes0;
    let polls = r.sim.handle.stats().count_route("GET /vehicles");
    r.daemon.shutdown().await.unwrap();
    assert!(polls >= 150, "only {polls} polls");
    // Plans (new prices, hourly sweeps), commands and token refreshes.
    assert!(
        flushes <= 40,
        "{flushes} flushes for {polls} polls in 6 hours"
    );
}

/// An Enode outage of half an hour: one warning when it starts, one line
/// when it is over, not one per failed request.
#[tokio::test(start_paused = true)]
async fn an_outage_is_logged_once_not_per_request() {
    let (logs, _log) = common::Capture::this_thread();
    let r = fleet::start(fleet::scenario(4, 4), "poll_slow = \"1m\"\n").await;
    r.clock.sleep(Duration::from_secs(300)).await;
    let rule = r.sim.handle.add_fault(enode_sim::Fault {
        kind: enode_sim::FaultKind::ServerError {
            status: 502,
            retry_after_secs: None,
        },
        user: None,
        target: Target::Api,
        trigger: enode_sim::Trigger::Always,
    });
    r.clock.sleep(Duration::from_secs(1800)).await;
    r.sim.handle.remove_fault(rule);
    r.clock.sleep(Duration::from_secs(1800)).await;
    let failed = r.sim.handle.stats().count("GET /vehicles", 502);
    r.daemon.shutdown().await.unwrap();
    assert!(failed >= 20, "only {failed} failed polls");
    let text = logs.text();
    let warns = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("enode requests"))
        .count();
    assert_eq!(warns, 1, "{failed} failures logged as:\n{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("recovered") && l.contains("enode requests"))
            .count(),
        1,
        "{text}"
    );
}
