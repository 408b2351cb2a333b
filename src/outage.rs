//! Failure episodes, so a log says "failing since T, why" once and "recovered
//! after N failures" once, instead of one warning per failed request.
//!
//! A fleet of thousands of users meets an Enode outage with thousands of
//! failed requests a minute; each used to log its own WARN. Now the first
//! failure of a kind opens an episode (one WARN with the reason), later
//! ones of that kind only count (DEBUG), and the first success after the
//! kind has been quiet for [`QUIET`] closes it (one INFO with the count and
//! the time span). Scattered failures, such as a 429 every few seconds,
//! keep one episode open rather than flapping.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{debug, info, warn};

/// An episode ends at the first success after this long without a failure
/// of its kind.
pub const QUIET: TimeDelta = TimeDelta::minutes(2);

/// The open failure episodes of one component, by kind of failure.
#[derive(Debug)]
pub struct Outages {
    /// What fails, for the log lines (e.g. "enode requests").
    what: &'static str,
    /// Open episodes by kind.
    open: Mutex<HashMap<&'static str, Episode>>,
}

/// One kind of failure, since it began.
#[derive(Debug, Clone)]
struct Episode {
    /// The first failure.
    since: DateTime<Utc>,
    /// The latest failure.
    last: DateTime<Utc>,
    /// Failures so far.
    count: u64,
}

/// What [`Outages::failed`] did, for callers (and tests) that care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// This failure opened an episode and was logged at WARN.
    Opened,
    /// An episode of this kind was open; the failure was only counted.
    Counted,
}

impl Outages {
    /// No open episode; `what` names the component in log lines.
    pub fn new(what: &'static str) -> Outages {
        Outages {
            what,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `kind` at `now`; `why` (already clipped by the
    /// error that made it) is logged only when it opens an episode.
    pub fn failed(
        &self,
        kind: &'static str,
        now: DateTime<Utc>,
        why: &dyn std::fmt::Display,
    ) -> Logged {
        let why = crate::limits::clip(&why.to_string());
        let mut open = self.open.lock().expect("outages lock");
        match open.get_mut(kind) {
            Some(e) => {
                e.last = now;
                e.count += 1;
                debug!(what = self.what, kind, error = %why, failures = e.count, "still failing");
                Logged::Counted
            }
            None => {
                open.insert(
                    kind,
                    Episode {
                        since: now,
                        last: now,
                        count: 1,
                    },
                );
                warn!(what = self.what, kind, since = %now, error = %why, "failing; further failures of this kind are counted, not logged, until it recovers");
                Logged::Opened
            }
        }
    }

    /// Records a success at `now`: closes every episode quiet for [`QUIET`],
    /// with one INFO line each. Returns how many it closed.
    pub fn succeeded(&self, now: DateTime<Utc>) -> usize {
        let mut open = self.open.lock().expect("outages lock");
        if open.is_empty() {
            return 0;
        }
        let before = open.len();
        open.retain(|kind, e| {
            if now - e.last < QUIET {
                return true;
            }
            info!(what = self.what, kind, since = %e.since, last_failure = %e.last, failures = e.count, "recovered");
            false
        });
        before - open.len()
    }

    /// Kinds failing now, for status views.
    pub fn failing(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self
            .open
            .lock()
            .expect("outages lock")
            .keys()
            .copied()
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn one_line_per_change_of_state() {
        let o = Outages::new("enode requests");
        let t0 = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
        assert_eq!(o.failed("server error", t0, &"status 500"), Logged::Opened);
        for i in 1..1000 {
            let t = t0 + TimeDelta::seconds(i);
            assert_eq!(o.failed("server error", t, &"status 500"), Logged::Counted);
        }
        let t = t0 + TimeDelta::seconds(990);
        assert_eq!(o.failed("timeout", t, &"timed out"), Logged::Opened);
        // A success right after a failure does not close: no flapping.
        assert_eq!(o.succeeded(t0 + TimeDelta::seconds(1000)), 0);
        assert_eq!(o.failing(), ["server error", "timeout"]);
        // Quiet long enough: both close, once.
        let later = t0 + TimeDelta::seconds(999) + QUIET;
        assert_eq!(o.succeeded(later), 2);
        assert_eq!(o.succeeded(later), 0);
        assert!(o.failing().is_empty());
        assert_eq!(
            o.failed("server error", later, &"status 502"),
            Logged::Opened
        );
    }
}
