//! Why a vehicle is or is not charging now, in one sentence a driver
//! understands. Computed once, next to the controller's decision (the fleet
//! calls [`explain`] right after [`ControlState::decide`] and its
//! commands), and shown unchanged by the admin socket, the CLI, the status
//! page and the metrics (by [`Why`]).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{ControlState, OverrideMode, Seen};
use crate::localtime::short;

/// The kind of answer: stable codes for scripts and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// Not observed since the daemon started.
    NotObserved,
    /// Enode cannot reach the vehicle.
    Unreachable,
    /// Not plugged in.
    NotPluggedIn,
    /// Plugged in, but not at a controlled charging location.
    NotAtHome,
    /// Enode's own smart charging is on and not taken over.
    EnodeSmartCharging,
    /// The driver took over until the unplug.
    Suspended,
    /// The vehicle did not follow commands.
    Unresponsive,
    /// An operator's charge-now.
    ChargeNow,
    /// An operator's stop.
    Stopped,
    /// No prices to plan with.
    NoPrices,
    /// The planner refused the request.
    CannotPlan,
    /// Plugged in, no plan yet.
    Planning,
    /// At the vehicle's own charge limit.
    Full,
    /// Charging in a planned block.
    Charging,
    /// Waiting for a cheaper planned block.
    Waiting,
    /// The plan has no more blocks.
    Done,
    /// A START was sent and awaits confirmation.
    Starting,
    /// A STOP was sent and awaits confirmation.
    Stopping,
}

impl Why {
    /// A coarse state for counting vehicles (metrics, `status`): charging,
    /// waiting, idle, manual or trouble.
    pub fn state(self) -> &'static str {
        match self {
            Why::Charging | Why::ChargeNow | Why::Starting => "charging",
            Why::Waiting | Why::Planning | Why::Stopping => "waiting",
            Why::NotPluggedIn | Why::NotAtHome | Why::Done | Why::Full | Why::NotObserved => "idle",
            Why::Suspended | Why::Stopped | Why::EnodeSmartCharging => "manual",
            Why::Unreachable | Why::Unresponsive | Why::NoPrices | Why::CannotPlan => "trouble",
        }
    }
}

/// The answer: a code and the sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// What kind of answer.
    pub code: Why,
    /// One sentence for the driver.
    pub text: String,
}

/// What besides the control state the sentence needs.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The last observation, if any since start.
    pub seen: Option<&'a Seen>,
    /// Plugged in (any location).
    pub plugged: Option<bool>,
    /// Enode's own smart charging is on and not taken over.
    pub enode_smart_charging: bool,
    /// A price curve is known.
    pub has_prices: bool,
    /// Why the last plan failed, while it does.
    pub plan_error: Option<&'a str>,
    /// The target in force (a trip's, else the policy's), percent.
    pub target_percent: f64,
    /// The zone people read times in.
    pub tz: Tz,
    /// The shared connection (`[[policy.sites]]`) whose power the car's
    /// START waits for, while it waits.
    pub waiting_for_site: Option<&'a str>,
}

impl Explanation {
    fn new(code: Why, text: impl Into<String>) -> Self {
        Explanation {
            code,
            text: text.into(),
        }
    }
}

/// Why the vehicle is (not) charging at `now`.
pub fn explain(s: &ControlState, now: DateTime<Utc>, cx: &Context<'_>) -> Explanation {
    use Explanation as E;
    let t = |at: DateTime<Utc>| short(at, now, cx.tz);
    let Some(seen) = cx.seen else {
        return E::new(
            Why::NotObserved,
            "No news from this car since smartcharged started; it is polled soon.",
        );
    };
    if s.unreachable {
        return E::new(
            Why::Unreachable,
            "Enode cannot reach the car right now, so smartcharged sends it no commands until it can.",
        );
    }
    if cx.plugged != Some(true) {
        return E::new(
            Why::NotPluggedIn,
            "Not plugged in, so there is nothing to charge.",
        );
    }
    if cx.enode_smart_charging {
        return E::new(
            Why::EnodeSmartCharging,
            "Enode's own smart charging is on for this car, so smartcharged leaves it alone (take_over_enode_smart_charging lets it take over).",
        );
    }
    if !s.session {
        return E::new(
            Why::NotAtHome,
            "Plugged in away from a charging location smartcharged controls, so it leaves the car alone.",
        );
    }
    let charging = seen.charging == Some(true);
    if let Some(site) = cx.waiting_for_site.filter(|_| !charging) {
        return E::new(
            Why::Waiting,
            format!(
                "Not charging yet: the connection it shares ({site}) has no power left for it until another car there stops."
            ),
        );
    }
    if let Some(o) = &s.steer {
        let limit = match (o.until, o.soc) {
            (Some(u), _) => format!(" until {}", t(u)),
            (None, Some(soc)) => format!(" until {soc:.0} %"),
            (None, None) => " until it is unplugged".into(),
        };
        return match o.mode {
            OverrideMode::ChargeNow if seen.full() => E::new(
                Why::Full,
                "Not charging: the battery is at the car's own charge limit (charge-now asked).",
            ),
            OverrideMode::ChargeNow => E::new(
                Why::ChargeNow,
                format!(
                    "{} because charge-now was asked{limit}, whatever the price.",
                    if charging {
                        "Charging now"
                    } else {
                        "Starting to charge"
                    }
                ),
            ),
            OverrideMode::Stop => E::new(
                Why::Stopped,
                format!("Not charging because a stop was asked{limit}."),
            ),
        };
    }
    if let Some(why) = &s.suspended {
        return E::new(
            Why::Suspended,
            format!("smartcharged stays out of the way until the car is unplugged: {why}."),
        );
    }
    if s.unresponsive {
        return E::new(
            Why::Unresponsive,
            "The car did not follow smartcharged's commands, so it is left alone until it is unplugged.",
        );
    }
    if let Some(p) = &s.pending {
        let (code, verb) = if p.action.charging() {
            (Why::Starting, "START")
        } else {
            (Why::Stopping, "STOP")
        };
        return E::new(
            code,
            format!(
                "A {verb} was sent at {} and is waiting for the car to confirm it.",
                t(p.sent_at)
            ),
        );
    }
    let Some(plan) = &s.plan else {
        return if let Some(e) = cx.plan_error {
            E::new(Why::CannotPlan, format!("No plan can be made: {e}."))
        } else if !cx.has_prices {
            E::new(
                Why::NoPrices,
                "Waiting for electricity prices before planning.",
            )
        } else {
            E::new(Why::Planning, "Plugged in; the plan is being made.")
        };
    };
    let target = cx.target_percent;
    let by = t(plan.deadline);
    let short_of = if plan.plan.feasible {
        String::new()
    } else {
        format!(" There is not enough time to reach {target:.0} % by {by}.")
    };
    if seen.full() {
        return E::new(
            Why::Full,
            "Not charging: the battery is at the car's own charge limit.",
        );
    }
    let now_block = plan
        .plan
        .blocks
        .iter()
        .find(|b| b.start <= now && now < b.end);
    let next_block = plan.plan.blocks.iter().find(|b| b.start > now);
    if let Some(b) = now_block {
        return E::new(
            Why::Charging,
            format!(
                "Charging now: until {} is among the cheapest times to reach {target:.0} % by {by}.{short_of}",
                t(b.end)
            ),
        );
    }
    if let Some(b) = next_block {
        return E::new(
            Why::Waiting,
            format!(
                "Not charging now: cheaper electricity comes at {}{}",
                t(b.start),
                if plan.plan.feasible {
                    format!(", and the car still reaches {target:.0} % by {by}.")
                } else {
                    format!(".{short_of}")
                }
            ),
        );
    }
    E::new(
        Why::Done,
        format!(
            "Not charging: the plan needs no more charging before {by} (target {target:.0} %).{short_of}"
        ),
    )
}
