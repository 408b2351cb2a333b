use chrono::TimeZone;

use super::*;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, h, m, 0).unwrap()
}

fn seen(plugged: bool, charging: bool, soc: f64) -> Seen {
    Seen {
        plugged: Some(plugged),
        at_home: true,
        charging: Some(charging),
        soc: Some(soc),
        charge_limit: Some(90.0),
        charge_rate_kw: charging.then_some(11.0),
        manual: false,
    }
}

/// A plan with one block 01:00-03:00 (tomorrow relative to t(18, 0)).
fn plan(state: &mut ControlState, version: u64) {
    let start = t(1, 0) + TimeDelta::days(1);
    let end = t(3, 0) + TimeDelta::days(1);
    state.plan = Some(ActivePlan {
        plan: planner::Plan {
            feasible: true,
            charge_minutes: 120,
            energy_kwh: 22.0,
            cost: 2.2,
            asap_cost: 4.4,
            shortfall_kwh: 0.0,
            blocks: vec![planner::Block {
                start,
                end,
                energy_kwh: 22.0,
                cost: 2.2,
                tentative: false,
            }],
            warnings: vec![],
        },
        made_at: t(18, 0),
        deadline: t(7, 0) + TimeDelta::days(1),
        soc_at_plan: 40.0,
        battery_kwh: 55.0,
        power_kw: 11.0,
        efficiency: 1.0,
        prices_version: version,
    });
}

/// Marks the plan as made at `at`, so the hourly sweep does not ask for a
/// new one in tests that look at a later instant.
fn made_at(state: &mut ControlState, at: DateTime<Utc>) {
    state.plan.as_mut().unwrap().made_at = at;
}

#[test]
fn plug_in_asks_for_a_plan_then_stops_an_unplanned_charge() {
    let mut c = ControlState::default();
    // The car starts charging by itself on plug-in: not an override.
    let s = seen(true, true, 40.0);
    assert_eq!(c.observe(t(18, 0), &s, true), vec![Event::PluggedIn]);
    assert_eq!(c.decide(t(18, 0), &s, 5.0, 1), Step::Plan("plugged in"));
    plan(&mut c, 1);
    assert_eq!(
        c.decide(t(18, 0), &s, 5.0, 1),
        Step::Command(Action::Stop, "block ends")
    );
    c.sent(Action::Stop, t(18, 0));
    // Until confirmed, it does not send again.
    assert_eq!(c.decide(t(18, 1), &s, 5.0, 1), Step::Idle);
    let s2 = seen(true, false, 40.0);
    assert_eq!(
        c.observe(t(18, 1), &s2, true),
        vec![Event::Confirmed(Action::Stop)]
    );
    assert!(c.suspended.is_none());
    assert_eq!(c.decide(t(18, 1), &s2, 5.0, 1), Step::Idle);
}

#[test]
fn block_edges_start_and_stop() {
    let mut c = ControlState::default();
    let s = seen(true, false, 40.0);
    c.observe(t(18, 0), &s, true);
    plan(&mut c, 1);
    let start = t(1, 0) + TimeDelta::days(1);
    assert_eq!(c.next_wake(t(18, 0)), Some(start));
    made_at(&mut c, start);
    assert_eq!(
        c.decide(start, &s, 5.0, 1),
        Step::Command(Action::Start, "block starts")
    );
    c.sent(Action::Start, start);
    let on = seen(true, true, 40.0);
    assert_eq!(
        c.observe(start, &on, true),
        vec![Event::Confirmed(Action::Start)]
    );
    let end = t(3, 0) + TimeDelta::days(1);
    let on_end = seen(true, true, 80.0);
    c.observe(end, &on_end, true);
    made_at(&mut c, end);
    assert_eq!(
        c.decide(end, &on_end, 5.0, 1),
        Step::Command(Action::Stop, "block ends")
    );
}

#[test]
fn new_prices_and_drift_trigger_replans() {
    let mut c = ControlState::default();
    let s = seen(true, false, 40.0);
    c.observe(t(18, 0), &s, true);
    plan(&mut c, 1);
    assert_eq!(c.decide(t(18, 0), &s, 5.0, 2), Step::Plan("new prices"));
    assert_eq!(c.decide(t(19, 0), &s, 5.0, 1), Step::Plan(SWEEP_REASON));
    // Halfway through the block the plan expects 40 + 11 kWh / 55 kWh = 60 %.
    let start = t(1, 0) + TimeDelta::days(1);
    c.sent(Action::Start, start);
    c.observe(start, &seen(true, true, 40.0), true);
    let mid = t(2, 0) + TimeDelta::days(1);
    assert!((c.expected_soc(mid).unwrap() - 60.0).abs() < 1e-9);
    let slow = seen(true, true, 50.0);
    c.observe(mid, &slow, true);
    made_at(&mut c, mid);
    assert_eq!(
        c.decide(mid, &slow, 5.0, 1),
        Step::Plan("state of charge drifted from the plan")
    );
}

#[test]
fn manual_start_suspends_until_unplug() {
    let mut c = ControlState::default();
    let s = seen(true, false, 40.0);
    c.observe(t(18, 0), &s, true);
    plan(&mut c, 1);
    let mut manual = seen(true, true, 41.0);
    manual.manual = true;
    let ev = c.observe(t(19, 0), &manual, true);
    assert!(matches!(&ev[..], [Event::Override(_)]), "{ev:?}");
    assert_eq!(
        c.decide(t(19, 0), &manual, 5.0, 1),
        Step::Idle,
        "never stops the driver"
    );
    // Unplugged: control resumes at the next session.
    assert_eq!(
        c.observe(t(20, 0), &seen(false, false, 50.0), true),
        vec![Event::Unplugged]
    );
    assert!(c.suspended.is_none() && c.plan.is_none());
    assert_eq!(
        c.observe(t(21, 0), &seen(true, false, 50.0), true),
        vec![Event::PluggedIn]
    );
    assert_eq!(
        c.decide(t(21, 0), &seen(true, false, 50.0), 5.0, 1),
        Step::Plan("plugged in")
    );
}

#[test]
fn uncommanded_change_is_an_override_but_stopping_when_full_is_not() {
    let mut c = ControlState::default();
    c.observe(t(18, 0), &seen(true, false, 40.0), true);
    let ev = c.observe(t(18, 2), &seen(true, true, 40.5), true);
    assert!(matches!(&ev[..], [Event::Override(_)]), "{ev:?}");

    let mut c = ControlState::default();
    c.observe(t(18, 0), &seen(true, true, 89.0), true);
    let ev = c.observe(t(18, 10), &seen(true, false, 90.0), true);
    assert!(ev.is_empty(), "{ev:?}");
    // Suspension can be switched off by policy.
    let mut c = ControlState::default();
    c.observe(t(18, 0), &seen(true, false, 40.0), true);
    assert!(c
        .observe(t(18, 2), &seen(true, true, 40.5), false)
        .is_empty());
}

#[test]
fn unconfirmed_commands_are_resent_then_given_up() {
    let mut c = ControlState::default();
    let s = seen(true, false, 40.0);
    c.observe(t(18, 0), &s, true);
    plan(&mut c, 1);
    let start = t(1, 0) + TimeDelta::days(1);
    let mut now = start;
    for attempt in 1..=MAX_ATTEMPTS {
        made_at(&mut c, now);
        let step = c.decide(now, &s, 5.0, 1);
        assert!(
            matches!(step, Step::Command(Action::Start, _)),
            "attempt {attempt}: {step:?}"
        );
        c.sent(Action::Start, now);
        assert_eq!(c.next_wake(now), Some(now + CONFIRM_AFTER));
        now += CONFIRM_TIMEOUT;
    }
    made_at(&mut c, now);
    assert_eq!(c.decide(now, &s, 5.0, 1), Step::GiveUp(Action::Start));
}

#[test]
fn never_starts_above_the_charge_limit_or_away() {
    let mut c = ControlState::default();
    let full = seen(true, false, 90.0);
    c.observe(t(18, 0), &full, true);
    plan(&mut c, 1);
    let start = t(1, 0) + TimeDelta::days(1);
    made_at(&mut c, start);
    assert_eq!(c.decide(start, &full, 50.0, 1), Step::Idle);

    let mut away = seen(true, false, 40.0);
    away.at_home = false;
    let mut c = ControlState::default();
    assert!(c.observe(t(18, 0), &away, true).is_empty());
    assert_eq!(c.decide(t(18, 0), &away, 5.0, 1), Step::Idle);
}

#[test]
fn a_sweep_keeps_the_plan_unless_it_falls_short_or_a_new_one_saves() {
    let mut c = ControlState::default();
    plan(&mut c, 1);
    let cur = c.plan.clone().unwrap();
    let mid = t(2, 0) + TimeDelta::days(1);
    // Half the block is left: 11 kWh for 1.1.
    let (cost, energy) = cur.remaining(mid);
    assert!((cost - 1.1).abs() < 1e-9 && (energy - 11.0).abs() < 1e-9);
    let fresh = |energy_kwh: f64, cost: f64| planner::Plan {
        energy_kwh,
        cost,
        ..cur.plan.clone()
    };
    // The same energy a bit cheaper (rounding noise): keep.
    assert!(cur.still_good(&fresh(11.05, 1.095), mid));
    // Clearly cheaper: take the new one.
    assert!(!cur.still_good(&fresh(11.0, 0.9), mid));
    // The rest of the current plan no longer reaches the target: take it.
    assert!(!cur.still_good(&fresh(13.0, 1.3), mid));
}

#[test]
fn charge_power_is_estimated_from_the_soc_rise_without_a_reported_rate() {
    let mut c = ControlState::default();
    let mut s = seen(true, false, 40.0);
    c.observe(t(18, 0), &s, true);
    plan(&mut c, 1);
    c.sent(Action::Start, t(18, 0));
    s.charging = Some(true);
    s.charge_rate_kw = None;
    c.observe(t(18, 1), &s, true);
    assert_eq!(c.power_kw, None, "no rise yet");
    // 55 kWh battery, efficiency 1: 10 % in 30 minutes is 11 kW.
    s.soc = Some(50.0);
    c.observe(t(18, 31), &s, true);
    assert!(
        (c.power_kw.unwrap() - 11.0).abs() < 1e-9,
        "{:?}",
        c.power_kw
    );
}

fn charge_now(until: Option<DateTime<Utc>>, soc: Option<f64>) -> Override {
    Override {
        mode: OverrideMode::ChargeNow,
        until,
        soc,
        set_at: t(18, 0),
        by: "root".into(),
    }
}

fn cx(s: &Seen) -> Context<'_> {
    Context {
        seen: Some(s),
        plugged: s.plugged,
        enode_smart_charging: false,
        has_prices: true,
        plan_error: None,
        target_percent: 80.0,
        tz: chrono_tz::Europe::Berlin,
        waiting_for_site: None,
    }
}

#[test]
fn charge_now_starts_at_once_and_auto_returns_to_the_plan() {
    let mut c = ControlState::default();
    let s = seen(true, false, 40.0);
    c.observe(t(18, 0), &s, true);
    plan(&mut c, 1);
    assert_eq!(c.decide(t(18, 0), &s, 5.0, 1), Step::Idle);
    assert_eq!(explain(&c, t(18, 0), &cx(&s)).code, Why::Waiting);
    c.set_override(Some(charge_now(Some(t(20, 0)), None)));
    assert_eq!(
        c.decide(t(18, 0), &s, 5.0, 1),
        Step::Command(Action::Start, "override: charge now")
    );
    let e = explain(&c, t(18, 0), &cx(&s));
    assert_eq!(e.code, Why::ChargeNow);
    assert!(e.text.contains("until 21:00"), "{}", e.text);
    c.sent(Action::Start, t(18, 0));
    let on = seen(true, true, 41.0);
    // Our own START is no driver override.
    assert_eq!(
        c.observe(t(18, 1), &on, true),
        vec![Event::Confirmed(Action::Start)]
    );
    assert!(c.suspended.is_none() && c.steer.is_some());
    // Far from the plan's expectation, yet no replan while overridden.
    assert_eq!(c.decide(t(18, 30), &on, 5.0, 1), Step::Idle);
    // auto: a fresh plan first, then the plan's STOP.
    c.set_override(None);
    assert_eq!(
        c.decide(t(18, 31), &on, 5.0, 1),
        Step::Plan("asked to replan")
    );
    plan(&mut c, 1);
    c.replan = None;
    made_at(&mut c, t(18, 31));
    c.plan.as_mut().unwrap().soc_at_plan = 41.0;
    assert_eq!(
        c.decide(t(18, 31), &on, 5.0, 1),
        Step::Command(Action::Stop, "block ends")
    );
}

#[test]
fn an_override_ends_at_its_time_or_soc_and_at_unplug() {
    let mut c = ControlState::default();
    let s = seen(true, true, 40.0);
    c.observe(t(18, 0), &s, true);
    c.set_override(Some(charge_now(None, Some(60.0))));
    let ev = c.observe(t(19, 0), &seen(true, true, 60.0), true);
    assert!(
        matches!(&ev[..], [Event::SteeringEnded(w)] if w.contains("state of charge")),
        "{ev:?}"
    );
    assert!(c.steer.is_none() && c.replan.is_some());

    c.set_override(Some(Override {
        mode: OverrideMode::Stop,
        ..charge_now(Some(t(20, 0)), None)
    }));
    assert_eq!(
        c.decide(t(19, 0), &s, 5.0, 1),
        Step::Command(Action::Stop, "override: stop")
    );
    c.sent(Action::Stop, t(19, 0));
    assert_eq!(
        c.observe(t(19, 30), &seen(true, false, 55.0), true),
        vec![Event::Confirmed(Action::Stop)]
    );
    assert!(c.steer.is_some());
    let ev = c.observe(t(20, 0), &seen(true, false, 60.0), true);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::SteeringEnded(w) if w.contains("time is up"))),
        "{ev:?}"
    );

    c.set_override(Some(charge_now(None, None)));
    let ev = c.observe(t(21, 0), &seen(false, false, 60.0), true);
    assert!(ev.contains(&Event::Unplugged));
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::SteeringEnded(w) if w.contains("unplugged"))));
    assert!(c.steer.is_none());
}

#[test]
fn a_trip_set_while_unplugged_waits_for_its_session_and_ends_with_it() {
    let mut c = ControlState::default();
    c.observe(t(12, 0), &seen(false, false, 30.0), true);
    c.set_trip(Some(Trip {
        depart: t(10, 0) + TimeDelta::days(1),
        target_percent: Some(90.0),
        set_at: t(12, 0),
        by: "root".into(),
        in_session: false,
    }));
    // Unplugged polls keep it.
    c.observe(t(13, 0), &seen(false, false, 30.0), true);
    assert!(c.trip.as_ref().is_some_and(|t| !t.in_session));
    c.observe(t(18, 0), &seen(true, false, 30.0), true);
    assert!(c.trip.as_ref().is_some_and(|t| t.in_session));
    let ev = c.observe(t(19, 0), &seen(false, false, 35.0), true);
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::SteeringEnded(w) if w.contains("trip ended"))));
    assert!(c.trip.is_none());
}

#[test]
fn a_driver_override_ends_an_operator_override() {
    let mut c = ControlState::default();
    let s = seen(true, false, 40.0);
    c.observe(t(18, 0), &s, true);
    c.set_override(Some(charge_now(None, None)));
    c.sent(Action::Start, t(18, 0));
    c.observe(t(18, 1), &seen(true, true, 40.0), true);
    // Stopped by hand.
    let ev = c.observe(t(18, 10), &seen(true, false, 41.0), true);
    assert!(ev.iter().any(|e| matches!(e, Event::Override(_))), "{ev:?}");
    assert!(c.steer.is_none() && c.suspended.is_some());
    assert_eq!(explain(&c, t(18, 10), &cx(&s)).code, Why::Suspended);
}

#[test]
fn a_start_waiting_for_the_shared_connection_says_so() {
    let mut c = ControlState::default();
    let s = seen(true, false, 40.0);
    c.observe(t(18, 0), &s, true);
    plan(&mut c, 1);
    let in_block = t(1, 30) + TimeDelta::days(1);
    assert_eq!(explain(&c, in_block, &cx(&s)).code, Why::Charging);
    let waiting = Context {
        waiting_for_site: Some("depot"),
        ..cx(&s)
    };
    let e = explain(&c, in_block, &waiting);
    assert_eq!(e.code, Why::Waiting);
    assert!(e.text.contains("(depot) has no power left"), "{}", e.text);
    // once it charges, it says so
    let on = seen(true, true, 41.0);
    assert_eq!(
        explain(
            &c,
            in_block,
            &Context {
                waiting_for_site: Some("depot"),
                ..cx(&on)
            }
        )
        .code,
        Why::Charging
    );
}

/// The departure (the plan's deadline) is decided on an observation made
/// after it settled, never on the poll before it: a car unplugged at its
/// deadline got a STOP when its last block ended there.
#[test]
fn the_departure_is_decided_on_an_observation_after_it() {
    let mut c = ControlState::default();
    let on = seen(true, true, 70.0);
    c.observe(t(18, 0), &on, true);
    plan(&mut c, 1);
    let deadline = t(7, 0) + TimeDelta::days(1);
    // the last block ends at the deadline
    if let Some(p) = c.plan.as_mut() {
        p.plan.blocks[0].start = deadline - TimeDelta::hours(2);
        p.plan.blocks[0].end = deadline;
        p.made_at = deadline - TimeDelta::minutes(30);
    }
    // no poll is asked for just before the deadline, one just after it
    let before = deadline - TimeDelta::minutes(3);
    assert_eq!(c.next_edge(before), None);
    assert_eq!(c.next_wake(before), Some(deadline + DEPARTURE_SETTLE));
    // at the deadline, on the poll made before it: nothing
    c.observed_at = Some(before);
    assert_eq!(c.decide(deadline, &on, 5.0, 1), Step::Idle);
    let settled = deadline + DEPARTURE_SETTLE;
    assert!(!c.departure_unobserved(deadline));
    assert!(c.departure_unobserved(settled));
    assert_eq!(c.decide(settled, &on, 5.0, 1), Step::Idle);
    // still there after it: planned again (and then stopped)
    c.observed_at = Some(settled);
    assert!(!c.departure_unobserved(settled));
    assert_eq!(
        c.decide(settled, &on, 5.0, 1),
        Step::Plan("deadline passed")
    );
    // gone: the session ends, no command
    let gone = seen(false, false, 80.0);
    assert_eq!(c.observe(settled, &gone, true), vec![Event::Unplugged]);
    assert_eq!(c.decide(settled, &gone, 5.0, 1), Step::Idle);
    assert!(!c.departure_unobserved(settled));
}

/// What the car did at the first observation of a plug-in, before any
/// command, is remembered across the unplug and stored when it changes; a
/// full car or an unknown charging state tells nothing.
#[test]
fn how_the_car_behaves_at_plug_in_is_remembered() {
    let mut c = ControlState::default();
    assert!(!c.waits());
    c.observe(t(18, 0), &seen(true, false, 40.0), true);
    assert!(c.waits());
    // later observations of the session (after our START) change nothing
    c.sent(Action::Start, t(18, 1));
    c.observe(t(18, 30), &seen(true, true, 45.0), true);
    assert_eq!(c.waits_on_plug_in, Some(true));
    c.observe(t(19, 0), &seen(false, false, 50.0), true);
    assert!(c.waits(), "kept across the unplug");
    // the next plug-in: it starts by itself
    let before = c.clone();
    c.observe(t(20, 0), &seen(true, true, 50.0), true);
    assert_eq!(c.waits_on_plug_in, Some(false));
    assert!(c.durably_differs(&before));
    c.observe(t(21, 0), &seen(false, false, 60.0), true);
    // full at plug-in, or nothing known of charging: unchanged
    c.observe(t(22, 0), &seen(true, false, 90.0), true);
    assert_eq!(c.waits_on_plug_in, Some(false));
    c.observe(t(23, 0), &seen(false, false, 90.0), true);
    let mut unknown = seen(true, false, 50.0);
    unknown.charging = None;
    c.observe(t(23, 30), &unknown, true);
    assert_eq!(c.waits_on_plug_in, Some(false));
    // only this field differs: still written
    let a = ControlState::default();
    let b = ControlState {
        waits_on_plug_in: Some(true),
        ..ControlState::default()
    };
    assert!(b.durably_differs(&a));
}
