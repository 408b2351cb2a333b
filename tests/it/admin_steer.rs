//! The read model and an operator's changes against a running daemon and
//! enode-sim, on paused time: a charge-now starts charging within seconds,
//! `auto` returns to the plan, a trip moves the deadline and replans. The
//! admin socket's own tests (tests/it/admin_socket.rs) drive the same changes
//! through the socket and the CLI.

use std::time::Duration;

use crate::common::fleet;
use chrono::TimeDelta;
use smartcharged::daemon::control::{Override, OverrideMode, Trip, Why};
use smartcharged::daemon::fleet::Change;

#[tokio::test(start_paused = true)]
async fn charge_now_then_auto_then_a_trip() {
    let mut r = fleet::start(fleet::scenario(1, 1), "").await;
    let read = r.daemon.read_model();
    // 17:00 UTC: plugged in since 16:00, the plan waits for the night.
    r.clock.sleep(Duration::from_secs(5 * 3600)).await;
    let snap = read.snapshot();
    let car = snap.vehicle("car-0-0").expect("the car is in the snapshot");
    assert_eq!(car.user.as_ref().map(|u| u.as_str()), Some("user-0"));
    assert!(car.session, "{car:?}");
    let plan = car.plan.as_ref().expect("a plan");
    assert_eq!(
        car.explanation.code,
        Why::Waiting,
        "{}",
        car.explanation.text
    );
    assert!(car
        .explanation
        .text
        .contains("cheaper electricity comes at"));
    assert!(car.next_edge.is_some());
    assert_eq!(snap.users.len(), 1);
    assert!(snap.prices.price_now.is_some());
    let deadline_before = plan.deadline;
    let _ = fleet::drain_commands(&mut r.events);

    // charge-now: a START at once, not at the next poll.
    let now = r.clock.now();
    let charge_now = Override {
        mode: OverrideMode::ChargeNow,
        until: None,
        soc: None,
        set_at: now,
        by: "test".into(),
    };
    read.fleet()
        .steer("car-0-0", Change::Override(Some(charge_now)), "test".into())
        .await
        .unwrap();
    let sent = fleet::drain_commands(&mut r.events);
    assert!(
        sent.iter()
            .any(|c| c.action == "START" && c.reason == "override: charge now"),
        "{sent:?}"
    );
    assert!(r.clock.now() - now < TimeDelta::seconds(5));
    r.clock.sleep(Duration::from_secs(5 * 60)).await;
    assert!(r.sim.handle.vehicle("car-0-0").unwrap().charging);
    let car = read.snapshot().vehicle("car-0-0").cloned().unwrap();
    assert_eq!(
        car.explanation.code,
        Why::ChargeNow,
        "{}",
        car.explanation.text
    );
    assert!(car.steer.is_some() && car.pending.is_none());

    // auto: back to the plan, which waits: a STOP.
    read.fleet()
        .steer("car-0-0", Change::Override(None), "test".into())
        .await
        .unwrap();
    r.clock.sleep(Duration::from_secs(5 * 60)).await;
    let sent = fleet::drain_commands(&mut r.events);
    assert!(
        sent.iter()
            .any(|c| c.action == "STOP" && c.reason == "block ends"),
        "{sent:?}"
    );
    assert!(!r.sim.handle.vehicle("car-0-0").unwrap().charging);
    let car = read.snapshot().vehicle("car-0-0").cloned().unwrap();
    assert!(car.steer.is_none());
    assert_eq!(
        car.explanation.code,
        Why::Waiting,
        "{}",
        car.explanation.text
    );

    // A trip three hours before the usual deadline, at 90 %.
    let depart = deadline_before - TimeDelta::hours(3);
    let trip = Trip {
        depart,
        target_percent: Some(90.0),
        set_at: r.clock.now(),
        by: "test".into(),
        in_session: false,
    };
    read.fleet()
        .steer("car-0-0", Change::Trip(Some(trip)), "test".into())
        .await
        .unwrap();
    let car = read.snapshot().vehicle("car-0-0").cloned().unwrap();
    let plan = car.plan.as_ref().unwrap();
    assert_eq!(plan.deadline, depart);
    assert!(plan.blocks.iter().all(|b| b.end <= depart), "{plan:?}");
    assert_eq!(car.target_percent, Some(90.0));
    let journal: Vec<String> = car.last_commands.iter().map(|e| e.action.clone()).collect();
    assert!(journal.ends_with(&["TRIP".to_owned()]), "{journal:?}");
    // By the departure the car has the trip's target (capped by its own
    // charge limit, 80 %); then the trip ends and the weekly policy is back.
    r.clock.sleep_until(depart + TimeDelta::minutes(3)).await;
    let v = r.sim.handle.vehicle("car-0-0").unwrap();
    assert!(v.soc >= 90.0_f64.min(v.charge_limit) - 0.5, "soc {}", v.soc);
    let car = read.snapshot().vehicle("car-0-0").cloned().unwrap();
    assert!(car.trip.is_none(), "{car:?}");
    assert!(
        car.last_commands
            .iter()
            .any(|e| e.action == "ENDED" && e.reason.contains("trip")),
        "{:?}",
        car.last_commands
    );
    r.daemon.shutdown().await.unwrap();
}
