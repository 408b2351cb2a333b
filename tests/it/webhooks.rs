//! The Firehose webhook receiver, end to end on paused time: signatures
//! are checked before anything is applied, duplicates are not applied,
//! a plug-in pushed by enode-sim is planned and started without a poll,
//! and re-ordered or duplicated deliveries end where clean ones do.

use std::time::Duration;

use crate::common::fleet;
use enode_sim::{EventAction, EventSpec, Scenario, WebhookFaults, When};
use smartcharged::daemon::fleet::FleetEvent;
use smartcharged::webhooks::sign;

/// The shared secret of these tests.
const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A daemon with `[webhooks]` serving its listener, on the fleet setup.
async fn daemon_with_webhooks(
    scenario: Scenario,
    policy_extra: &str,
    webhooks_extra: &str,
) -> (fleet::Running, std::net::SocketAddr, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("webhook-secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let extra = format!(
        "\n[http]\nlisten = \"{addr}\"\n\n[webhooks]\nsecret_file = \"{}\"\n{webhooks_extra}",
        file.display()
    );
    let r = fleet::start_with(scenario, policy_extra, &extra).await;
    r.daemon.serve_http(listener);
    (r, addr, secrets)
}

/// One car, parked at home unplugged, low, that does not start charging
/// by itself; no scheduled events.
fn one_car() -> Scenario {
    let mut s = fleet::scenario(1, 1);
    let v = &mut s.users[0].vehicles[0];
    v.charge_on_plug_in = false;
    v.soc = 20.0;
    v.events.clear();
    s
}

async fn post(
    addr: std::net::SocketAddr,
    body: Vec<u8>,
    signature: Option<String>,
    delivery: &str,
) -> u16 {
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/enode"))
        .header("x-enode-delivery", delivery)
        .body(body);
    if let Some(s) = signature {
        req = req.header("x-enode-signature", s);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn webhook_status(addr: std::net::SocketAddr) -> serde_json::Value {
    reqwest::get(format!("http://{addr}/status/webhooks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn plans(rx: &mut tokio::sync::mpsc::UnboundedReceiver<FleetEvent>) -> Vec<&'static str> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let FleetEvent::Planned { reason, .. } = e {
            out.push(reason);
        }
    }
    out
}

/// A signed delivery is applied once; a repeat of its id is not; a wrong
/// signature, a missing one, a body changed by one byte and a 2 MiB body
/// are refused (401, 413) with nothing applied.
#[tokio::test(start_paused = true)]
async fn only_signed_first_deliveries_are_applied() {
    let (mut r, addr, _secrets) =
        daemon_with_webhooks(one_car(), "min_soc_percent = 50\n", "").await;
    // The first poll sees the car unplugged.
    r.clock.sleep(Duration::from_secs(300)).await;
    r.sim.handle.plug_in("car-0-0").unwrap();
    assert!(plans(&mut r.events).is_empty());
    let at = r.clock.now().to_rfc3339();
    let body = serde_json::to_vec(&serde_json::json!([{
        "event": "user:vehicle:updated",
        "createdAt": at,
        "user": {"id": "user-0"},
        "vehicle": {"id": "car-0-0", "chargeState": {"isPluggedIn": true}}
    }]))
    .unwrap();
    let good = sign(SECRET.as_bytes(), &body);

    let wrong = sign(b"another secret", &body);
    assert_eq!(post(addr, body.clone(), Some(wrong), "d-1").await, 401);
    assert_eq!(post(addr, body.clone(), None, "d-2").await, 401);
    let mut changed = body.clone();
    let i = changed.len() / 2;
    changed[i] ^= 0x01;
    assert_eq!(post(addr, changed, Some(good.clone()), "d-3").await, 401);
    assert_eq!(
        post(addr, body.clone(), Some("sha1=nothex".into()), "d-4").await,
        401
    );
    let mut big = body.clone();
    big.resize(2 << 20, b' ');
    let big_sig = sign(SECRET.as_bytes(), &big);
    assert_eq!(post(addr, big, Some(big_sig), "d-5").await, 413);
    r.clock.sleep(Duration::from_secs(5)).await;
    let s = webhook_status(addr).await;
    assert_eq!(s["stats"]["bad_signature"], 4, "{s}");
    assert_eq!(s["stats"]["too_large"], 1, "{s}");
    assert_eq!(s["stats"]["events"], 0, "{s}");
    assert!(
        plans(&mut r.events).is_empty(),
        "a refused delivery was applied"
    );

    assert_eq!(
        post(addr, body.clone(), Some(good.clone()), "d-6").await,
        200
    );
    r.clock.sleep(Duration::from_secs(5)).await;
    assert_eq!(plans(&mut r.events), vec!["plugged in"]);
    assert_eq!(
        post(addr, body.clone(), Some(good.clone()), "d-6").await,
        200
    );
    r.clock.sleep(Duration::from_secs(5)).await;
    let s = webhook_status(addr).await;
    assert_eq!(s["stats"]["deliveries"], 1, "{s}");
    assert_eq!(s["stats"]["duplicates"], 1, "{s}");
    assert_eq!(s["stats"]["events"], 1, "{s}");

    // The delivery id is remembered across a restart.
    let dir = r.dir.path().to_owned();
    let text = r.config_text.clone();
    r.daemon.shutdown().await.unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (daemon, _events) = fleet::restart(&text, &dir, &r.clock).await;
    daemon.serve_http(listener);
    assert_eq!(post(addr, body.clone(), Some(good), "d-6").await, 200);
    let s = webhook_status(addr).await;
    assert_eq!(s["stats"]["duplicates"], 1, "{s}");
    assert_eq!(s["stats"]["events"], 0, "{s}");
    daemon.shutdown().await.unwrap();
}

/// A plug-in delivered by enode-sim's firehose is planned at once, and a
/// plan whose block starts now is started, with no poll in between.
#[tokio::test(start_paused = true)]
async fn a_pushed_plug_in_is_planned_and_started_without_a_poll() {
    let (mut r, addr, _secrets) =
        daemon_with_webhooks(one_car(), "min_soc_percent = 50\n", "").await;
    r.sim
        .handle
        .set_firehose(&format!("http://{addr}/webhooks/enode"), SECRET);
    // The first poll, and the test event that makes webhooks live.
    r.clock.sleep(Duration::from_secs(300)).await;
    let s = webhook_status(addr).await;
    assert_eq!(s["live"], true, "{s}");
    assert!(plans(&mut r.events).is_empty());
    let polls = r.sim.handle.stats().count("GET /vehicles", 200);
    assert!(polls >= 1);

    let plugged_at = r.clock.now();
    r.sim.handle.plug_in("car-0-0").unwrap();
    // Plans start at whole minutes: the first block starts within one.
    r.clock.sleep(Duration::from_secs(70)).await;
    let mut planned = None;
    let mut started = None;
    while let Ok(e) = r.events.try_recv() {
        match e {
            FleetEvent::Planned { reason, plan, .. } => planned = Some((reason, plan)),
            FleetEvent::Command(c) if c.action == "START" => started = Some(c),
            _ => {}
        }
    }
    let (reason, plan) = planned.expect("no plan after the pushed plug-in");
    assert_eq!(reason, "plugged in");
    assert!(
        plan.made_at - plugged_at <= chrono::TimeDelta::seconds(10),
        "planned {} after the plug-in",
        plan.made_at - plugged_at
    );
    let first = plan.plan.blocks.first().expect("a block");
    assert!(
        first.start - plugged_at <= chrono::TimeDelta::seconds(60),
        "plugged in at {plugged_at}: {:?}",
        plan.plan.blocks
    );
    let start = started.expect("no START after the plan");
    assert!(
        (start.at - first.start).abs() <= chrono::TimeDelta::seconds(2),
        "START at {} for a block from {}",
        start.at,
        first.start
    );
    assert_eq!(
        r.sim.handle.stats().count("GET /vehicles", 200),
        polls,
        "polled between the plug-in and the START"
    );
    assert!(r.sim.handle.vehicle("car-0-0").unwrap().charging);
    r.daemon.shutdown().await.unwrap();
}

/// Two hours of plug-ins, unplugs and driver actions, pushed by enode-sim
/// once cleanly and once with half the deliveries duplicated and half
/// re-ordered: the daemon ends with the same view of every vehicle, the
/// simulator's.
#[tokio::test(start_paused = true)]
async fn reordered_and_duplicated_deliveries_end_where_clean_ones_do() {
    let clean = run_pushed(WebhookFaults::default()).await;
    let faulty = run_pushed(WebhookFaults {
        duplicate: 0.5,
        reorder: 0.5,
        ..Default::default()
    })
    .await;
    assert!(
        faulty.1.duplicated > 0 && faulty.1.reordered > 0,
        "{:?}",
        faulty.1
    );
    assert_eq!(clean.0, faulty.0);
}

/// Runs a pushed scenario; returns each vehicle's (session, charging) as
/// the daemon's `/status` shows them at the end, and the simulator's
/// webhook counters.
async fn run_pushed(
    faults: WebhookFaults,
) -> (Vec<(String, bool, Option<bool>)>, enode_sim::WebhookStats) {
    let mut s = fleet::scenario(2, 4);
    for (i, v) in s.users.iter_mut().flat_map(|u| &mut u.vehicles).enumerate() {
        let m = |x: i64| When::After(chrono::TimeDelta::minutes(x + 3 * i as i64));
        v.charge_on_plug_in = i % 2 == 0;
        v.events = vec![
            EventSpec::new(m(10), EventAction::PlugIn),
            EventSpec::new(m(25), EventAction::Stop),
            EventSpec::new(m(40), EventAction::Unplug),
            EventSpec::new(m(55), EventAction::PlugIn),
        ];
    }
    let (mut r, addr, _secrets) = daemon_with_webhooks(s, "", "safety_poll = \"1d\"\n").await;
    r.sim.handle.set_webhook_faults(faults);
    r.sim
        .handle
        .set_firehose(&format!("http://{addr}/webhooks/enode"), SECRET);
    r.clock.sleep(Duration::from_secs(2 * 3600)).await;
    let status: serde_json::Value = reqwest::get(format!("http://{addr}/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut view: Vec<(String, bool, Option<bool>)> = status["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_owned(),
                v["session"].as_bool().unwrap(),
                v["observed"]["charging"].as_bool(),
            )
        })
        .collect();
    view.sort();
    assert_eq!(view.len(), 4, "{status}");
    for (id, session, charging) in &view {
        let truth = r.sim.handle.vehicle(id).unwrap();
        assert_eq!(*session, truth.plugged_in, "{id}");
        assert_eq!(*charging, Some(truth.charging), "{id}");
    }
    let _ = fleet::drain_commands(&mut r.events);
    let stats = r.sim.handle.webhook_stats();
    r.daemon.shutdown().await.unwrap();
    (view, stats)
}
