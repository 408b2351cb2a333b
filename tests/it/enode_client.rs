//! The Enode client against enode-sim on 127.0.0.1:0, in paused time.
//!
//! The simulator writes its JSON from the spec with its own types
//! (invariant 3), so these tests check the client's reading of the spec,
//! not its agreement with itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use clock::Clock;
use enode_sim::{Fault, FaultKind, Scenario, Sim, Target, Trigger};
use smartcharged::config::EnodeConfig;
use smartcharged::enode::{AuthError, Client, Error, Transient};
use smartcharged::model::{ChargeAction, ChargingReason, VehicleField, WatchProperty};
use smartcharged::secret::Secret;
use url::Url;

/// The clock's time when each test starts.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 16, 0, 0).unwrap()
}

/// A simulator on the built-in scenario and a client pointed at it, both
/// reading one clock.
struct Env {
    /// The running simulator (dropping it stops the server).
    sim: Sim,
    /// The client under test.
    client: Client,
    /// The shared clock.
    clock: Clock,
}

/// Config for a client talking to `sim`.
fn config(sim: &Sim, timeout: Duration) -> EnodeConfig {
    EnodeConfig {
        api_url: Url::parse(&format!("{}/", sim.base_url())).unwrap(),
        auth_url: Url::parse(&sim.auth_url()).unwrap(),
        token_url: Url::parse(&sim.token_url()).unwrap(),
        client_id: "smartcharged".into(),
        client_secret: Secret::new("sim-secret"),
        redirect_uri: Url::parse("http://127.0.0.1:8787/callback").unwrap(),
        scopes: vec!["offline_access".into(), "all".into()],
        pkce: true,
        request_timeout: timeout,
        token_timeout: timeout * 6,
    }
}

async fn start() -> Env {
    start_with(Scenario::builtin(), Duration::from_secs(10)).await
}

async fn start_with(scenario: Scenario, timeout: Duration) -> Env {
    let clock = Clock::starting_at(t0());
    let sim = enode_sim::spawn(scenario, clock.clone()).await.unwrap();
    let client = Client::new(&config(&sim, timeout), clock.clone()).unwrap();
    Env { sim, client, clock }
}

impl Env {
    /// A user's access and refresh tokens, as if the user had linked.
    fn tokens(&self, user: &str, scopes: &str) -> (Secret, Secret) {
        let t = self.sim.handle.grant_tokens(user, scopes).unwrap();
        (
            Secret::new(t.access_token),
            Secret::new(
                t.refresh_token
                    .expect("offline_access gives a refresh token"),
            ),
        )
    }

    /// A user's access token with every scope.
    fn token(&self, user: &str) -> Secret {
        self.tokens(user, "offline_access all").0
    }
}

#[tokio::test(start_paused = true)]
async fn list_vehicles_without_fields_returns_ids_only() {
    let env = start().await;
    let token = env.token("alice");
    let mut vs = env.client.list_vehicles(&token, &[]).await.unwrap();
    vs.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<&str> = vs.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["alice-leaf", "alice-model3"]);
    for v in &vs {
        assert!(v.charge_state.is_none(), "{v:?}");
        assert!(v.smart_charging_policy.is_none(), "{v:?}");
        assert!(v.location.is_none(), "{v:?}");
        assert!(v.information.is_none(), "{v:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn list_vehicles_with_poll_fields_reads_every_part() {
    let env = start().await;
    let token = env.token("alice");
    let vs = env
        .client
        .list_vehicles(&token, &VehicleField::POLL)
        .await
        .unwrap();
    let m3 = vs.iter().find(|v| v.id == "alice-model3").unwrap();
    let cs = m3.charge_state.as_ref().unwrap();
    assert_eq!(cs.battery_level, Some(35.0));
    assert_eq!(cs.charge_limit, Some(80.0));
    assert_eq!(cs.battery_capacity_kwh, Some(75.0));
    assert_eq!(cs.is_plugged_in, Some(true));
    assert_eq!(cs.is_charging, Some(true));
    assert_eq!(cs.charge_rate_kw, Some(11.0));
    assert!(cs.charge_time_remaining_min.is_some());
    assert_eq!(m3.charging_location_id.as_deref(), Some("alice-home"));
    let p = m3.smart_charging_policy.as_ref().unwrap();
    assert!(!p.is_enabled);
    assert_eq!(p.deadline_utc, NaiveTime::from_hms_opt(7, 0, 0));
    let info = m3.information.as_ref().unwrap();
    assert_eq!(info.brand.as_deref(), Some("Tesla"));
    assert_eq!(info.year, Some(2021));
    assert!(m3.location.as_ref().unwrap().latitude.is_some());
    assert!(m3.odometer.is_none(), "odometer was not asked for");

    // The Leaf reports numeric strings and is away and unplugged.
    let leaf = vs.iter().find(|v| v.id == "alice-leaf").unwrap();
    let cs = leaf.charge_state.as_ref().unwrap();
    assert_eq!(cs.battery_level, Some(60.0));
    assert!(cs.range_km.is_some());
    assert_eq!(cs.is_plugged_in, Some(false));
    assert_eq!(cs.is_charging, Some(false));
    assert_eq!(cs.charge_rate_kw, None);
    assert_eq!(cs.charge_time_remaining_min, None);
    assert_eq!(leaf.charging_location_id, None);
}

#[tokio::test(start_paused = true)]
async fn get_vehicle_and_charge_state_follow_the_clock() {
    let env = start().await;
    let token = env.token("alice");
    let v = env
        .client
        .get_vehicle(&token, "alice-model3", &[VehicleField::SmartChargingPolicy])
        .await
        .unwrap();
    assert!(v.smart_charging_policy.is_some());
    assert!(v.charge_state.is_none());
    // 11 kW into 75 kWh for half an hour: +7.33 percentage points.
    tokio::time::advance(Duration::from_secs(1800)).await;
    let cs = env
        .client
        .charge_state(&token, "alice-model3")
        .await
        .unwrap();
    let level = cs.battery_level.unwrap();
    assert!((level - (35.0 + 550.0 / 75.0)).abs() < 0.1, "{level}");
}

#[tokio::test(start_paused = true)]
async fn set_charging_stops_and_starts() {
    let env = start().await;
    let token = env.token("alice");
    let c = &env.client;
    c.set_charging(&token, "alice-model3", ChargeAction::Stop)
        .await
        .unwrap();
    let cs = c.charge_state(&token, "alice-model3").await.unwrap();
    assert_eq!(cs.is_charging, Some(false));
    assert_eq!(cs.charge_rate_kw, None);
    c.set_charging(&token, "alice-model3", ChargeAction::Start)
        .await
        .unwrap();
    let cs = c.charge_state(&token, "alice-model3").await.unwrap();
    assert_eq!(cs.is_charging, Some(true));
    assert!(cs
        .reasons
        .iter()
        .all(|r| !matches!(r, ChargingReason::Other(_))));
    let counts = env.sim.handle.stats().commands["alice-model3"].clone();
    assert_eq!((counts.start, counts.stop), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn smart_charging_policy_round_trips() {
    let env = start().await;
    let token = env.token("bob");
    let c = &env.client;
    let mut p = c
        .get_smart_charging_policy(&token, "bob-id3")
        .await
        .unwrap();
    assert!(p.is_enabled);
    assert_eq!(p.deadline_utc, NaiveTime::from_hms_opt(6, 30, 0));
    p.is_enabled = false;
    let stored = c
        .put_smart_charging_policy(&token, "bob-id3", &p)
        .await
        .unwrap();
    assert_eq!(stored, p);
    assert!(
        !env.sim
            .handle
            .vehicle("bob-id3")
            .unwrap()
            .smart_charging_enabled
    );
}

#[tokio::test(start_paused = true)]
async fn me_locations_watch_and_health() {
    let env = start().await;
    let token = env.token("alice");
    let c = &env.client;
    let me = c.me(&token).await.unwrap();
    assert_eq!(me.id, "alice");
    let locs = c.charging_locations(&token).await.unwrap();
    assert_eq!(locs.len(), 1);
    assert_eq!(locs[0].id, "alice-home");
    assert_eq!(locs[0].name.as_deref(), Some("Home"));
    c.watch_vehicle(&token, "alice-model3", &WatchProperty::AFTER_COMMAND)
        .await
        .unwrap();
    assert_eq!(env.sim.handle.stats().commands["alice-model3"].watch, 1);
    assert!(c.health_ready().await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn link_flow_with_pkce_gives_working_tokens() {
    let env = start().await;
    let c = &env.client;
    let state = c
        .link_user("alice", Some("TESLA"), Some("nb-NO"))
        .await
        .unwrap();
    assert!(!state.is_empty());
    let (url, verifier) = c.auth().authorize_url(&state, true);
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["state"], state);
    assert_eq!(q["scope"], "offline_access all");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "smartcharged");
    let verifier = verifier.expect("pkce was asked for");

    let code = consent(&url).await;
    // A wrong verifier is refused (and burns the code).
    let wrong = Secret::new("x".repeat(43));
    let e = c
        .auth()
        .exchange_code(&code, Some(&wrong))
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::InvalidGrant { .. }), "{e:?}");

    let state = c.link_user("alice", None, None).await.unwrap();
    let (url, verifier2) = c.auth().authorize_url(&state, true);
    assert_ne!(verifier2, Some(verifier), "each link gets its own verifier");
    let code = consent(&url).await;
    let tokens = c
        .auth()
        .exchange_code(&code, verifier2.as_ref())
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_some());
    assert_eq!(tokens.expires_at, env.clock.now() + TimeDelta::hours(1));
    assert!(tokens.scopes.iter().any(|s| s == "offline_access"));
    assert_eq!(c.me(&tokens.access_token).await.unwrap().id, "alice");
}

/// Follows the authorization URL like a browser that consents at once and
/// returns the code from the redirect.
async fn consent(url: &Url) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(url.clone()).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let location = resp.headers()["location"].to_str().unwrap();
    let back = Url::parse(location).unwrap();
    let q: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert!(!q.contains_key("error"), "{location}");
    q["code"].clone()
}

#[tokio::test(start_paused = true)]
async fn deauthorize_and_delete_user_end_their_tokens() {
    let env = start().await;
    let c = &env.client;
    let (access, refresh) = env.tokens("bob", "offline_access all");
    c.deauthorize_user("bob").await.unwrap();
    let e = c.me(&access).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    let e = c.auth().refresh(&refresh).await.unwrap_err();
    assert!(matches!(e, AuthError::InvalidGrant { .. }), "{e:?}");

    let access = env.token("alice");
    c.delete_user("alice").await.unwrap();
    let e = c.list_vehicles(&access, &[]).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn rate_limit_carries_retry_after() {
    let env = start().await;
    let token = env.token("alice");
    env.sim
        .handle
        .rate_limit_next(Some("alice"), 1, Duration::from_secs(30));
    let before = env.clock.now();
    let e = env
        .client
        .list_vehicles(&token, &VehicleField::POLL)
        .await
        .unwrap_err();
    let Error::RateLimited {
        retry_after: Some(r),
        problem,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(r.delay, Duration::from_secs(30));
    assert_eq!(r.not_before, before + TimeDelta::seconds(30));
    assert_eq!(problem.status, 429);
    assert_eq!(problem.title.as_deref(), Some("Too Many Requests"));
    assert!(e.is_retryable());
    assert_eq!(
        e.to_string().split(':').next(),
        Some("rate limited (retry after 30s)")
    );

    env.clock.sleep_until(r.not_before).await;
    env.client.list_vehicles(&token, &[]).await.unwrap();
    assert_eq!(env.sim.handle.stats().violations.retry_after_ignored, 0);
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_transient() {
    let env = start().await;
    let token = env.token("alice");
    env.sim.handle.server_error_next(Target::Api, None, 1, 502);
    let e = env.client.me(&token).await.unwrap_err();
    let Error::Transient(Transient::Server(p)) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(p.status, 502);
    assert!(e.is_retryable());
    env.client.me(&token).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn problem_json_becomes_rejected_with_title_and_detail() {
    let env = start().await;
    let token = env.token("alice");
    // The Leaf is away and unplugged: a command is refused with a problem.
    let e = env
        .client
        .set_charging(&token, "alice-leaf", ChargeAction::Start)
        .await
        .unwrap_err();
    let Error::Rejected(p) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(p.status, 400);
    assert_eq!(p.title.as_deref(), Some("Vehicle not plugged in"));
    assert!(p.detail.is_some());
    assert!(p.problem_type.as_deref().unwrap().starts_with("https://"));
    assert!(!e.is_retryable());

    let e = env
        .client
        .link_user("alice", Some("ZEPPELIN"), None)
        .await
        .unwrap_err();
    let Error::Rejected(p) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(p.title.as_deref(), Some("Payload validation failed"));
    assert!(p.detail.as_deref().unwrap().contains("ZEPPELIN"));
}

#[tokio::test(start_paused = true)]
async fn missing_scope_and_unknown_vehicle() {
    let env = start().await;
    let (narrow, _) = env.tokens("alice", "offline_access vehicle:location");
    let e = env
        .client
        .set_charging(&narrow, "alice-model3", ChargeAction::Stop)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
    let token = env.token("alice");
    let e = env
        .client
        .charge_state(&token, "bob-id3")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    let e = env.client.me(&Secret::new("made-up")).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn slow_answers_time_out_as_transient() {
    let env = start_with(Scenario::builtin(), Duration::from_secs(5)).await;
    let token = env.token("alice");
    env.sim
        .handle
        .add_latency(Target::Api, Duration::from_secs(60));
    let before = env.clock.now();
    let e = env.client.me(&token).await.unwrap_err();
    assert!(matches!(e, Error::Transient(Transient::Timeout)), "{e:?}");
    let waited = env.clock.now() - before;
    assert!(
        waited >= TimeDelta::seconds(5) && waited < TimeDelta::seconds(6),
        "{waited}"
    );
}

#[tokio::test(start_paused = true)]
async fn client_token_is_shared_cached_and_renewed() {
    let env = start().await;
    env.sim
        .handle
        .set_access_token_lifetime(Duration::from_secs(600));
    let c = &env.client;
    let users = ["u1", "u2", "u3", "u4", "u5"];
    let links = users.map(|u| c.link_user(u, None, None));
    for r in join5(links).await {
        r.unwrap();
    }
    assert_eq!(env.sim.handle.stats().tokens.client_credentials, 1);

    // Still fresh after 8 minutes; renewed ahead of its 10-minute expiry.
    tokio::time::advance(Duration::from_secs(8 * 60)).await;
    c.link_user("u1", None, None).await.unwrap();
    assert_eq!(env.sim.handle.stats().tokens.client_credentials, 1);
    tokio::time::advance(Duration::from_secs(90)).await;
    c.link_user("u1", None, None).await.unwrap();
    assert_eq!(env.sim.handle.stats().tokens.client_credentials, 2);
    assert_eq!(env.sim.handle.stats().violations.expired_token, 0);
}

/// Awaits every future concurrently on the current task.
async fn join5<F: std::future::Future>(fs: [F; 5]) -> Vec<F::Output> {
    let [a, b, c, d, e] = fs;
    let (a, b, c, d, e) = tokio::join!(a, b, c, d, e);
    vec![a, b, c, d, e]
}

#[tokio::test(start_paused = true)]
async fn refresh_rotates_and_a_replay_is_invalid_grant() {
    let env = start().await;
    let auth = env.client.auth();
    let (_, rt0) = env.tokens("alice", "offline_access all");
    tokio::time::advance(Duration::from_secs(120)).await;
    let t1 = auth.refresh(&rt0).await.unwrap();
    let rt1 = t1.refresh_token.clone().unwrap();
    assert_ne!(rt1, rt0, "the refresh token rotates");
    assert_eq!(t1.expires_at, env.clock.now() + TimeDelta::hours(1));
    assert_eq!(env.client.me(&t1.access_token).await.unwrap().id, "alice");

    let t2 = auth.refresh(&rt1).await.unwrap();
    let rt2 = t2.refresh_token.clone().unwrap();

    // Replaying a rotated token is refused and revokes the whole grant.
    let e = auth.refresh(&rt0).await.unwrap_err();
    assert!(matches!(e, AuthError::InvalidGrant { .. }), "{e:?}");
    assert!(!e.is_retryable());
    let e = auth.refresh(&rt2).await.unwrap_err();
    assert!(matches!(e, AuthError::InvalidGrant { .. }), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn token_endpoint_rate_limit_and_outage() {
    let env = start().await;
    let auth = env.client.auth();
    let (_, rt) = env.tokens("alice", "offline_access all");
    env.sim.handle.add_fault(Fault {
        kind: FaultKind::RateLimit {
            retry_after_secs: Some(12),
        },
        user: None,
        target: Target::Token,
        trigger: Trigger::Next { n: 1 },
    });
    let e = auth.refresh(&rt).await.unwrap_err();
    let AuthError::RateLimited {
        retry_after: Some(r),
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(r.delay, Duration::from_secs(12));
    assert!(e.is_retryable());

    env.sim
        .handle
        .server_error_next(Target::Token, None, 1, 503);
    let e = auth.refresh(&rt).await.unwrap_err();
    assert!(matches!(e, AuthError::Transient(_)), "{e:?}");

    // Neither failure consumed the refresh token.
    let t = auth.refresh(&rt).await.unwrap();
    assert!(t.refresh_token.is_some());
}

#[tokio::test(start_paused = true)]
async fn client_token_failure_is_reported_for_admin_calls() {
    let env = start().await;
    env.sim
        .handle
        .server_error_next(Target::Token, None, 1, 500);
    let e = env.client.link_user("u1", None, None).await.unwrap_err();
    assert!(
        matches!(e, Error::ClientToken(AuthError::Transient(_))),
        "{e:?}"
    );
    assert!(e.is_retryable());
    env.client.link_user("u1", None, None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn wrong_client_secret_is_invalid_client() {
    let clock = Clock::starting_at(t0());
    let sim = enode_sim::spawn(Scenario::builtin(), clock.clone())
        .await
        .unwrap();
    let mut cfg = config(&sim, Duration::from_secs(10));
    cfg.client_secret = Secret::new("wrong");
    let client = Client::new(&cfg, clock).unwrap();
    let e = client.link_user("u1", None, None).await.unwrap_err();
    assert!(
        matches!(e, Error::ClientToken(AuthError::InvalidClient { .. })),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    assert!(!format!("{e} {e:?}").contains("wrong"));
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn trace_logs_carry_no_token_or_secret() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = start().await;
    let c = &env.client;
    let (access, refresh) = env.tokens("alice", "offline_access all");
    let state = c.link_user("alice", None, None).await.unwrap();
    let client_token = c.auth().client_token().await.unwrap();
    let (url, verifier) = c.auth().authorize_url(&state, true);
    let code = consent(&url).await;
    let linked = c
        .auth()
        .exchange_code(&code, verifier.as_ref())
        .await
        .unwrap();
    let refreshed = c.auth().refresh(&refresh).await.unwrap();
    c.list_vehicles(&access, &VehicleField::POLL).await.unwrap();
    c.set_charging(&refreshed.access_token, "alice-model3", ChargeAction::Stop)
        .await
        .unwrap();
    env.sim
        .handle
        .rate_limit_next(None, 1, Duration::from_secs(5));
    c.me(&access).await.unwrap_err();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("enode request"), "nothing was logged: {logs}");
    let mut secrets = vec![
        access,
        refresh,
        client_token,
        linked.access_token,
        refreshed.access_token,
        Secret::new("sim-secret"),
        Secret::new(code),
    ];
    secrets.extend(linked.refresh_token);
    secrets.extend(refreshed.refresh_token);
    secrets.extend(verifier);
    for s in &secrets {
        assert!(!logs.contains(s.expose()), "a secret is in the logs");
    }
}
