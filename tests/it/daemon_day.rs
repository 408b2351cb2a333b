//! The daemon over a simulated day, against enode-sim on paused time:
//! 8 users, 20 vehicles plugging in during the evening and leaving at
//! 07:05, real DE-LU prices.

use std::collections::HashMap;

use crate::common::fleet;
use smartcharged::daemon::control::ActivePlan;
use smartcharged::daemon::fleet::FleetEvent;

/// The `smartcharged demo` fleet with its defaults (3 users, 6 vehicles,
/// 24 hours): its command list has no STOP followed by a START of the same
/// vehicle within 10 minutes either.
#[tokio::test(start_paused = true)]
async fn the_demo_sends_no_needless_stop_and_start() {
    let (_sim, mut rx) = fleet::run_day(fleet::scenario(3, 6)).await;
    let mut commands = Vec::new();
    let mut replans = 0;
    let mut planned = std::collections::HashSet::new();
    while let Ok(e) = rx.try_recv() {
        match e {
            FleetEvent::Planned { vehicle, .. } => {
                replans += usize::from(!planned.insert(vehicle));
            }
            FleetEvent::Command(c) => commands.push(c),
        }
    }
    assert!(commands.len() >= 6, "{commands:?}");
    assert!(replans > 0, "no vehicle was replanned");
    for (i, c) in commands.iter().enumerate() {
        assert_eq!(c.result, "ok", "{c:?}");
        let next = commands[i + 1..].iter().find(|n| n.vehicle == c.vehicle);
        if let Some(n) = next {
            assert!(
                !(c.action == "STOP"
                    && n.action == "START"
                    && n.at - c.at < chrono::TimeDelta::minutes(10)),
                "needless STOP/START: {c:?} then {n:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_day_of_twenty_vehicles() {
    let (sim, mut rx) = fleet::run_day(fleet::scenario(8, 20)).await;

    // The first plan of each vehicle's session: the optimum for the state
    // it plugged in with.
    let mut first_plan: HashMap<String, ActivePlan> = HashMap::new();
    let mut commands = 0;
    let mut last: HashMap<String, smartcharged::store::JournalEntry> = HashMap::new();
    let mut replans = 0;
    while let Ok(e) = rx.try_recv() {
        match e {
            FleetEvent::Planned { vehicle, plan, .. } => {
                replans += usize::from(first_plan.contains_key(&vehicle));
                first_plan.entry(vehicle).or_insert(plan);
            }
            FleetEvent::Command(c) => {
                assert_eq!(c.result, "ok", "{c:?}");
                commands += 1;
                // No needless cycle: a STOP followed by a START of the
                // same vehicle within minutes (a replan in a running block
                // once stopped the car for the minute up to the new block).
                if let Some(prev) = last.get(&c.vehicle) {
                    assert!(
                        !(prev.action == "STOP"
                            && c.action == "START"
                            && c.at - prev.at < chrono::TimeDelta::minutes(10)),
                        "needless STOP/START: {prev:?} then {c:?}"
                    );
                }
                last.insert(c.vehicle.clone(), c);
            }
        }
    }
    assert!(
        replans > 0,
        "no vehicle was replanned: the check above saw no replan"
    );
    let stats = sim.handle.stats();
    assert_eq!(
        stats.violations.command_unplugged, 0,
        "{:?}",
        stats.recent_violations
    );
    assert_eq!(
        stats.violations.command_away, 0,
        "{:?}",
        stats.recent_violations
    );
    assert_eq!(stats.violations.expired_token, 0);
    assert_eq!(
        first_plan.len(),
        20,
        "every vehicle was planned: {:?}",
        first_plan.keys()
    );
    assert!(commands >= 20, "only {commands} commands");

    // Cost from the daemon's first sight of each plug-in on: before it, a
    // car that starts charging on plug-in does so on its own (at most one
    // slow poll interval), which is reported but not the plan's doing.
    let spot = fleet::spot_prices();
    let (mut planned, mut charged, mut before_kwh) = (0.0, 0.0, 0.0);
    for id in sim.handle.vehicle_ids() {
        let snap = sim.handle.vehicle(&id).unwrap();
        let first = &first_plan[&id];
        assert!(first.plan.feasible, "{id}: infeasible plan");
        // Deadline met: at least the target (or the car's own limit).
        let want = 80.0f64.min(snap.charge_limit);
        assert!(
            snap.soc >= want - 0.5,
            "{id}: left with {:.1} % < {want} %",
            snap.soc
        );
        planned += first.plan.cost;
        let (cost, _) = fleet::charged_cost(&snap, &spot, first.made_at);
        charged += cost;
        before_kwh += snap.energy_kwh - fleet::charged_cost(&snap, &spot, first.made_at).1;
    }
    let gap = (charged - planned).abs() / planned.abs();
    eprintln!(
        "{commands} commands; planned {planned:.3} EUR, charged {charged:.3} EUR ({:.3} %); {before_kwh:.1} kWh charged before the daemon saw the plug-in",
        gap * 100.0
    );
    assert!(gap <= 0.01, "charged {charged:.3} vs planned {planned:.3}");
    // A car charging on its own before the first poll: at most one slow
    // interval (15 min) at up to 11.1 kW for the 10 cars that do it.
    assert!(
        before_kwh <= 10.0 * 11.1 * 0.25 + 0.1,
        "{before_kwh} kWh before plans"
    );
}
