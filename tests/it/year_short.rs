//! Two weeks of real nights per market, end to end: the real daemon
//! against enode-sim on paused time, prices revealed at their publication
//! time, compared with the hindsight optimum and the peer strategies
//! (`examples/year.rs` runs the whole year).

use crate::common::year::{self, Market};

/// Nights per market: two weekends, with Saturday plug-ins in the
/// afternoon before a Sunday departure.
const NIGHTS: u32 = 14;

#[tokio::test(start_paused = true)]
async fn two_weeks_per_market() {
    let (mut daemon_cmds, mut slot_cmds) = (0, 0);
    for market in Market::ALL {
        let r = year::simulate(market, NIGHTS, 1, None).await;
        eprintln!("{}{}\n", r.table(), r.detail.join("\n"));
        assert!(r.sessions >= 10, "{} sessions only", r.sessions);
        assert!(
            r.daemon.kwh > 50.0,
            "the daemon charged {:.1} kWh",
            r.daemon.kwh
        );
        // Within 2 % of the hindsight optimum, every reachable deadline
        // met, no command to an unplugged car.
        assert!(r.gap() <= 0.02, "{}", r.table());
        assert!(r.missed.is_empty(), "missed {:?}\n{}", r.missed, r.table());
        assert!(r.clean, "{}", r.violations);
        // Never more commands than the cheapest-slots strategy. Where the
        // optimum itself needs two blocks (SE3's first night), the exact
        // plan and the slot strategy agree, so on a short run a market may
        // tie; over the three markets the daemon needs fewer.
        assert!(r.daemon.commands <= r.slots.commands, "{}", r.table());
        daemon_cmds += r.daemon.commands;
        slot_cmds += r.slots.commands;
    }
    assert!(
        daemon_cmds < slot_cmds,
        "{daemon_cmds} commands, the slot strategy {slot_cmds}"
    );
}
