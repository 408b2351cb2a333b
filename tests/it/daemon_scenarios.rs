//! The daemon in situations that are easy to get wrong: rate limits, a
//! driver who takes over, a restart mid-day, Enode's own smart charging.
//! All on paused time against enode-sim.

use crate::common;

use std::time::Duration;

use crate::common::fleet;
use chrono::TimeDelta;
use enode_sim::{EventAction, EventSpec, When};

/// Under a 10 % rate of 429 answers with Retry-After, no user sends a
/// request before its Retry-After, and every deadline is still met.
#[tokio::test(start_paused = true)]
async fn rate_limits_are_honoured_and_deadlines_met() {
    let mut r = fleet::start(fleet::scenario(4, 8), "").await;
    r.sim
        .handle
        .rate_limit_rate(None, 0.10, Duration::from_secs(90));
    r.clock.sleep(fleet::DAY).await;
    r.daemon.shutdown(&r.clock).await.unwrap();
    let stats = r.sim.handle.stats();
    assert!(
        stats.count("GET /vehicles", 429) > 5,
        "few 429s: {:?}",
        stats.requests
    );
    assert_eq!(
        stats.violations.retry_after_ignored, 0,
        "{:?}",
        stats.recent_violations
    );
    assert_eq!(stats.violations.command_unplugged, 0);
    for id in r.sim.handle.vehicle_ids() {
        let v = r.sim.handle.vehicle(&id).unwrap();
        let want = 80.0f64.min(v.charge_limit);
        assert!(v.soc >= want - 0.5, "{id}: {:.1} % < {want} %", v.soc);
    }
    let _ = fleet::drain_commands(&mut r.events);
}

/// The driver starts charging by hand in the evening, when the plan would
/// wait for cheaper night hours: the daemon leaves it alone (no STOP),
/// and controls the car again after it is unplugged and plugged back in.
#[tokio::test(start_paused = true)]
async fn manual_override_is_respected_until_unplug() {
    let mut scenario = fleet::scenario(1, 1);
    let car = &mut scenario.users[0].vehicles[0];
    car.charge_on_plug_in = false;
    car.events = vec![
        EventSpec::new(When::After(TimeDelta::hours(5)), EventAction::PlugIn),
        // 18:30 UTC: prices are high; the plan waits for the night.
        EventSpec::new(
            When::After(TimeDelta::minutes(6 * 60 + 30)),
            EventAction::Start,
        ),
        EventSpec::new(When::After(TimeDelta::hours(8)), EventAction::Unplug),
        EventSpec::new(When::After(TimeDelta::hours(9)), EventAction::PlugIn),
        EventSpec::new(
            When::After(TimeDelta::hours(18) + TimeDelta::minutes(5)),
            EventAction::Unplug,
        ),
    ];
    let id = car.id.clone();
    // This test's log lines (the runtime runs on this thread).
    let (logs, _log) = common::Capture::this_thread();
    let mut r = fleet::start(
        scenario,
        "\n[[policy.users]]\nid = \"user-0\"\ntarget_percent = 90\n",
    )
    .await;
    // Until the override, the plan waits: no command while not charging.
    r.clock.sleep(Duration::from_secs(6 * 3600 + 25 * 60)).await;
    let before = fleet::drain_commands(&mut r.events);
    assert!(before.is_empty(), "{before:?}");
    // The driver's charge runs until the unplug at +8 h, untouched.
    r.clock.sleep(Duration::from_secs(90 * 60)).await;
    let during = fleet::drain_commands(&mut r.events);
    assert!(during.is_empty(), "the daemon interfered: {during:?}");
    let v = r.sim.handle.vehicle(&id).unwrap();
    assert!(v.charging, "the driver's charge was stopped");
    let text = logs.text();
    let overrides: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("driver override"))
        .collect();
    assert_eq!(overrides.len(), 1, "logged once: {text}");
    assert!(overrides[0].contains(&id), "{}", overrides[0]);
    // After unplug and a new plug-in, control resumes: the night's plan runs.
    r.clock
        .sleep(Duration::from_secs(10 * 3600 + 30 * 60))
        .await;
    let after = fleet::drain_commands(&mut r.events);
    assert!(after.iter().any(|c| c.action == "START"), "{after:?}");
    r.daemon.shutdown(&r.clock).await.unwrap();
}

/// A restart mid-day (the daemon dropped, a new one on the same store):
/// no command is sent twice, the plans resume and deadlines are met.
#[tokio::test(start_paused = true)]
async fn restart_mid_day_sends_no_duplicate_command() {
    let r = fleet::start(fleet::scenario(2, 4), "").await;
    let fleet::Running {
        sim,
        daemon,
        mut events,
        clock,
        config_text,
        dir,
        ..
    } = r;
    // Into the night: plans made, some blocks running.
    clock.sleep(Duration::from_secs(14 * 3600)).await;
    let mut sent = fleet::drain_commands(&mut events);
    daemon.abort().await;
    drop(events);
    let (daemon, mut events) = fleet::restart(&config_text, dir.path(), &clock).await;
    clock.sleep(Duration::from_secs(2 * 60)).await;
    let just_after = fleet::drain_commands(&mut events);
    assert!(
        just_after.is_empty(),
        "commands right after the restart: {just_after:?}"
    );
    clock.sleep(Duration::from_secs(10 * 3600)).await;
    sent.extend(fleet::drain_commands(&mut events));
    daemon.shutdown(&clock).await.unwrap();
    // Per vehicle, commands alternate: never the same action twice in a row.
    for id in sim.handle.vehicle_ids() {
        let actions: Vec<&str> = sent
            .iter()
            .filter(|c| c.vehicle == id)
            .map(|c| c.action.as_str())
            .collect();
        for w in actions.windows(2) {
            assert_ne!(w[0], w[1], "{id}: {actions:?}");
        }
        let v = sim.handle.vehicle(&id).unwrap();
        assert!(
            v.soc >= 80.0f64.min(v.charge_limit) - 0.5,
            "{id}: {:.1} %",
            v.soc
        );
    }
    assert_eq!(sim.handle.stats().violations.refresh_replay, 0);
}

/// A vehicle with Enode's smart charging on is not controlled (and the log
/// says so); with take-over configured, the daemon disables Enode's policy
/// first and then controls the car.
#[tokio::test(start_paused = true)]
async fn enode_smart_charging_is_left_alone_or_taken_over() {
    for take_over in [false, true] {
        let mut scenario = fleet::scenario(1, 1);
        let car = &mut scenario.users[0].vehicles[0];
        car.smart_charging.enabled = true;
        car.smart_charging.deadline = "06:00".into();
        let id = car.id.clone();
        let extra = format!("take_over_enode_smart_charging = {take_over}\n");
        let mut r = fleet::start(scenario, &extra).await;
        r.clock.sleep(fleet::DAY).await;
        r.daemon.shutdown(&r.clock).await.unwrap();
        let journal = smartcharged::store::Store::open(&r.store)
            .unwrap()
            .journal_entries()
            .unwrap();
        let v = r.sim.handle.vehicle(&id).unwrap();
        if take_over {
            assert_eq!(
                journal.first().map(|j| j.action.as_str()),
                Some("DISABLE_ENODE_SMART_CHARGING"),
                "{journal:?}"
            );
            assert!(!v.smart_charging_enabled);
            assert!(journal.iter().any(|j| j.action == "START"), "{journal:?}");
            assert!(v.soc >= 79.5, "{:.1} %", v.soc);
        } else {
            assert!(journal.is_empty(), "controlled anyway: {journal:?}");
            assert!(v.smart_charging_enabled);
        }
        let _ = fleet::drain_commands(&mut r.events);
    }
}

/// A vehicle Enode cannot reach gets no command and is polled slowly;
/// when it is reachable again, control resumes and the deadline is met.
#[tokio::test(start_paused = true)]
async fn unreachable_vehicles_get_no_commands_and_slow_polls() {
    let mut scenario = fleet::scenario(1, 1);
    scenario.users[0].vehicles[0].charge_on_plug_in = true;
    let id = scenario.users[0].vehicles[0].id.clone();
    let mut r = fleet::start(scenario, "").await;
    // Plugged in at +4 h (16:00 UTC), charging by itself; unreachable at once.
    r.clock.sleep(Duration::from_secs(4 * 3600 - 60)).await;
    r.sim.handle.set_reachable(&id, false).unwrap();
    let polls_before = r.sim.handle.stats().count("GET /vehicles", 200);
    // Four hours unreachable: the daemon never saw the plug-in.
    r.clock.sleep(Duration::from_secs(4 * 3600)).await;
    let polls = r.sim.handle.stats().count("GET /vehicles", 200) - polls_before;
    assert!(polls <= 4 * 4 + 2, "{polls} polls in 4 h while unreachable");
    assert!(fleet::drain_commands(&mut r.events).is_empty());
    assert_eq!(
        r.sim.handle.stats().commands.get(&id).map_or(0, |c| c.stop),
        0
    );
    // Reachable again: the car is stopped for the cheap night, and the
    // deadline is met.
    r.sim.handle.set_reachable(&id, true).unwrap();
    r.clock.sleep(Duration::from_secs(12 * 3600)).await;
    let cmds = fleet::drain_commands(&mut r.events);
    assert_eq!(
        cmds.first().map(|c| c.action.as_str()),
        Some("STOP"),
        "{cmds:?}"
    );
    let v = r.sim.handle.vehicle(&id).unwrap();
    assert!(v.soc >= 80.0f64.min(v.charge_limit) - 0.5, "{:.1} %", v.soc);
    r.daemon.shutdown(&r.clock).await.unwrap();
}
