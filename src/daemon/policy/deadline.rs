//! The next deadline of a vehicle: a local time of day in its IANA zone
//! (or Enode's UTC deadline), turned into an instant.

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::VehiclePolicy;
use crate::model::SmartChargingPolicy;

/// The least time between `now` and the deadline of a new plan. A car
/// plugged in at 06:55 for a 07:00 deadline would get a five-minute plan
/// that cannot reach any goal; it plans for the next day instead (and the
/// planner's `min_soc_percent` still charges at once what must be there).
///
/// This is for new plans: a plan keeps its deadline until it passes, so a
/// replan at 06:40 of a plan made at 22:00 still aims at 07:00 today. The
/// caller keeps the deadline of the current plan for those.
pub const MIN_LEAD: TimeDelta = TimeDelta::minutes(30);

/// The deadline for a plan made at `now`: the first deadline at least
/// [`MIN_LEAD`] after `now`.
///
/// Local deadlines are computed in the policy's zone per calendar day, so
/// 07:00 stays 07:00 local across DST. A time that does not exist that day
/// (the spring-forward gap) moves to the first instant after the gap
/// (02:30 becomes 03:00); a time that exists twice (fall-back) takes the
/// earlier instant. With `use_enode_deadline` and an Enode policy that has
/// a deadline, that deadline ("HH:MM" in UTC, every day) is used instead.
pub fn next_deadline(
    policy: &VehiclePolicy,
    enode: Option<&SmartChargingPolicy>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let earliest = now + MIN_LEAD;
    if policy.use_enode_deadline {
        if let Some(t) = enode.and_then(|p| p.deadline_utc) {
            let today = earliest.date_naive().and_time(t).and_utc();
            return if today >= earliest {
                today
            } else {
                today + TimeDelta::days(1)
            };
        }
    }
    let tz = policy.time_zone;
    let first = earliest.with_timezone(&tz).date_naive();
    let on = |days: i64| {
        let day = first + TimeDelta::days(days);
        local_instant(tz, day.and_time(policy.deadline_on(day.weekday())))
    };
    // today or tomorrow; the later days only guard against odd zones
    (0..3)
        .map(on)
        .find(|c| *c >= earliest)
        .unwrap_or_else(|| on(3))
}

/// The deadline for replanning a vehicle whose current plan aims at
/// `current`: that deadline while it is still ahead and the policy still
/// gives it (so a replan at 06:40 keeps aiming at 07:00 today instead of
/// moving to tomorrow within [`MIN_LEAD`]), else [`next_deadline`]. A
/// policy change that moves the deadline takes effect at once. Pass `None`
/// for a new plug-in.
pub fn replan_deadline(
    policy: &VehiclePolicy,
    enode: Option<&SmartChargingPolicy>,
    now: DateTime<Utc>,
    current: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    match current {
        Some(c) if c > now && next_deadline(policy, enode, c - MIN_LEAD) == c => c,
        _ => next_deadline(policy, enode, now),
    }
}

/// The instant of local time `naive` in `tz`: the earlier one when it is
/// ambiguous, the first valid instant after the gap when it does not exist.
pub(crate) fn local_instant(tz: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => after_gap(tz, naive),
    }
}

/// The first instant whose local time is at or after `naive`, for a
/// `naive` inside a gap: the instant the clocks jumped.
fn after_gap(tz: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    // `naive` read with the offsets from either side of the gap brackets
    // the transition; local time only jumps forward inside the bracket
    let as_utc = |probe: NaiveDateTime| {
        let offset = tz.offset_from_utc_datetime(&probe).fix().local_minus_utc();
        (naive - TimeDelta::seconds(i64::from(offset)))
            .and_utc()
            .timestamp()
    };
    let (a, b) = (
        as_utc(naive - TimeDelta::days(1)),
        as_utc(naive + TimeDelta::days(1)),
    );
    let (mut lo, mut hi) = (a.min(b), a.max(b));
    let local = |ts: i64| {
        DateTime::from_timestamp(ts, 0)
            .map(|t| t.with_timezone(&tz).naive_local())
            .unwrap_or(NaiveDateTime::MAX)
    };
    // smallest ts in [lo, hi] with local(ts) >= naive; local(hi) >= naive
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if local(mid) >= naive {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    DateTime::from_timestamp(lo, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
