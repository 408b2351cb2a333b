//! Vendor health. Enode reports each vendor's service on `GET
//! /health/vendors`; a vendor in `OUTAGE` fails every request for its
//! vehicles, so polling them or sending commands only spends requests
//! (and, at a rationed vendor, the users' budget) for errors. The daemon
//! asks every [`CHECK_EVERY`] (one request for the whole fleet) and pauses
//! every request of the users of a vendor reported down — polls and
//! commands alike — until it is reported up again. Each change is logged
//! once: when the vendor goes down and when it recovers.
//!
//! Only a user's vendor known from linking (`link --vendor`) can be
//! paused; users linked without one are never paused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::fleet::Fleet;
use crate::model::{VendorHealth, VendorStatus};
use crate::outage::Outages;

/// How often Enode is asked for vendor health.
pub const CHECK_EVERY: Duration = Duration::from_secs(300);
/// Without an answer from the health endpoint for this long, paused
/// vendors are resumed: news that old is no reason to keep a fleet idle
/// (requests then meet the vendor's own errors and back off as usual).
pub const STALE_AFTER: TimeDelta = TimeDelta::minutes(15);

/// Vendors reported down, by upper-case name, with the time each went
/// down.
#[derive(Debug, Default)]
pub struct VendorsDown {
    /// Down vendors and since when.
    down: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl VendorsDown {
    /// Whether `vendor` (any case) is reported down.
    pub fn is_down(&self, vendor: &str) -> bool {
        let down = self.down.lock().expect("vendors down lock");
        !down.is_empty() && down.contains_key(&vendor.to_ascii_uppercase())
    }

    /// Takes in a health report at `now`: a vendor in `OUTAGE` is down,
    /// any other status (or a vendor left out) is up. Logs each change
    /// once and returns the vendors that changed, down ones first.
    pub fn update(
        &self,
        now: DateTime<Utc>,
        report: &[VendorHealth],
    ) -> (Vec<String>, Vec<String>) {
        let reported: HashMap<String, bool> = report
            .iter()
            .map(|h| {
                (
                    h.vendor.to_ascii_uppercase(),
                    h.status == VendorStatus::Outage,
                )
            })
            .collect();
        let mut down = self.down.lock().expect("vendors down lock");
        let mut went_down = Vec::new();
        let mut recovered = Vec::new();
        for (vendor, is_down) in &reported {
            if *is_down && !down.contains_key(vendor) {
                warn!(vendor = %vendor, "Enode reports the vendor down: requests for its users are paused until it recovers");
                down.insert(vendor.clone(), now);
                went_down.push(vendor.clone());
            }
        }
        down.retain(|vendor, since| {
            if reported.get(vendor).copied().unwrap_or(false) {
                return true;
            }
            let for_s = (now - *since).num_seconds();
            info!(vendor = %vendor, down_for_s = for_s, "the vendor is up again: requests for its users resume");
            recovered.push(vendor.clone());
            false
        });
        went_down.sort();
        recovered.sort();
        (went_down, recovered)
    }
}

/// Asks Enode for vendor health every [`CHECK_EVERY`] until `cancel`
/// fires, and keeps the fleet's [`VendorsDown`] current.
pub async fn run(fleet: Arc<Fleet>, cancel: CancellationToken) {
    let clock = fleet.clock.clone();
    let outages = Outages::new("vendor health");
    let mut last_answer = clock.now();
    loop {
        let now = clock.now();
        match fleet.client.health_vendors().await {
            Ok(report) => {
                last_answer = now;
                outages.succeeded(now);
                fleet.vendors_down.update(now, &report);
            }
            Err(e) => {
                outages.failed(e.kind(), now, &format_args!("{e}"));
                if now - last_answer >= STALE_AFTER {
                    fleet.vendors_down.update(now, &[]);
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = clock.sleep(CHECK_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn h(vendor: &str, status: VendorStatus) -> VendorHealth {
        VendorHealth {
            vendor: vendor.into(),
            status,
        }
    }

    #[test]
    fn an_outage_pauses_until_the_vendor_is_reported_up() {
        let t = |m| Utc.with_ymd_and_hms(2024, 3, 4, 12, m, 0).unwrap();
        let d = VendorsDown::default();
        assert!(!d.is_down("TESLA"));
        let (down, up) = d.update(
            t(0),
            &[
                h("TESLA", VendorStatus::Outage),
                h("BMW", VendorStatus::ElevatedErrorRate),
            ],
        );
        assert_eq!((down, up), (vec!["TESLA".to_owned()], vec![]));
        assert!(d.is_down("tesla") && d.is_down("TESLA"));
        assert!(!d.is_down("BMW"));
        // Reported down again: no change, nothing logged again.
        let (down, up) = d.update(t(5), &[h("TESLA", VendorStatus::Outage)]);
        assert!(down.is_empty() && up.is_empty());
        // An unknown status counts as up.
        let (down, up) = d.update(t(10), &[h("TESLA", VendorStatus::Other("MAYBE".into()))]);
        assert_eq!((down, up), (vec![], vec!["TESLA".to_owned()]));
        assert!(!d.is_down("TESLA"));
        // A vendor left out of the report is up too.
        d.update(t(15), &[h("BMW", VendorStatus::Outage)]);
        assert!(d.is_down("BMW"));
        d.update(t(20), &[]);
        assert!(!d.is_down("BMW"));
    }
}
