//! Plug-in sessions: what each one charged, what it cost at the prices of
//! the minutes it really charged, and what charging at once from the
//! plug-in would have cost. The fleet accounts each observation interval
//! in the vehicle's [`SessionLog`] (part of its control state) and stores a
//! [`SessionRecord`] at the unplug; the savings report sums them.
//!
//! Pure: no I/O, no clock. The running log is written with the control
//! state whenever that is written durably (a command, a plan), not at
//! every poll, so a kill -9 loses at most the energy since the last such
//! write.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::prices::PriceCurve;

/// A session in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionLog {
    /// When it was plugged in (first observed so).
    pub plugged_at: DateTime<Utc>,
    /// SoC then, percent.
    pub soc_in: Option<f64>,
    /// Grid energy so far, kWh.
    pub energy_kwh: f64,
    /// Its cost so far.
    pub cost: f64,
    /// Hours charged so far.
    pub hours: f64,
    /// Accounted up to this instant.
    pub at: DateTime<Utc>,
    /// Charging at `at`.
    pub charging: bool,
}

/// One finished plug-in session, stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The vehicle.
    pub vehicle: String,
    /// Its user.
    pub user: String,
    /// Plugged in.
    pub plugged_at: DateTime<Utc>,
    /// Unplugged.
    pub unplugged_at: DateTime<Utc>,
    /// SoC at plug-in, percent.
    pub soc_in: Option<f64>,
    /// SoC at unplug, percent.
    pub soc_out: Option<f64>,
    /// Grid energy charged, kWh.
    pub energy_kwh: f64,
    /// Its cost at the prices of the minutes it charged.
    pub cost: f64,
    /// The cost had the same energy been charged at once from plug-in.
    pub at_once_cost: f64,
    /// The target in force, percent.
    pub target_percent: f64,
    /// The target (capped by the vehicle's charge limit) was reached by the unplug.
    pub deadline_met: bool,
    /// Percentage points short of it at the unplug.
    pub shortfall_percent: f64,
}

impl SessionLog {
    /// A session plugged in at `now`.
    pub fn start(now: DateTime<Utc>, soc: Option<f64>, charging: bool) -> Self {
        SessionLog {
            plugged_at: now,
            soc_in: soc,
            energy_kwh: 0.0,
            cost: 0.0,
            hours: 0.0,
            at: now,
            charging,
        }
    }

    /// Accounts `[self.at, now)`: charged at `power_kw` if it was charging
    /// at `self.at`; then notes whether it charges now.
    pub fn account(
        &mut self,
        now: DateTime<Utc>,
        power_kw: Option<f64>,
        curve: Option<&PriceCurve>,
        charging_now: bool,
    ) {
        if now > self.at && self.charging {
            if let Some(kw) = power_kw.filter(|k| k.is_finite() && *k > 0.0) {
                let hours = (now - self.at).num_milliseconds() as f64 / 3.6e6;
                self.hours += hours;
                self.energy_kwh += kw * hours;
                self.cost += kw * price_hours(curve, self.at, now);
            }
        }
        self.at = self.at.max(now);
        self.charging = charging_now;
    }

    /// The record at the unplug.
    pub fn close(
        &self,
        vehicle: &str,
        user: &str,
        unplugged_at: DateTime<Utc>,
        soc_out: Option<f64>,
        target: f64,
        curve: Option<&PriceCurve>,
    ) -> SessionRecord {
        let at_once_cost = if self.hours > 0.0 && self.energy_kwh > 0.0 {
            let kw = self.energy_kwh / self.hours;
            let end = self.plugged_at + TimeDelta::milliseconds((self.hours * 3.6e6) as i64);
            kw * price_hours(curve, self.plugged_at, end)
        } else {
            0.0
        };
        let shortfall = soc_out.map_or(0.0, |s| (target - s).max(0.0));
        SessionRecord {
            vehicle: vehicle.to_owned(),
            user: user.to_owned(),
            plugged_at: self.plugged_at,
            unplugged_at,
            soc_in: self.soc_in,
            soc_out,
            energy_kwh: self.energy_kwh,
            cost: self.cost,
            at_once_cost,
            target_percent: target,
            deadline_met: shortfall <= 1.0,
            shortfall_percent: shortfall,
        }
    }
}

/// The integral of the price over `[from, to)`, in price × hours; time
/// with no known price counts at the nearest known slot's price.
fn price_hours(curve: Option<&PriceCurve>, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let Some(c) = curve else { return 0.0 };
    let mut sum = 0.0;
    let mut covered = 0.0;
    for s in c.slots() {
        let a = s.start.max(from);
        let b = s.end.min(to);
        if b > a {
            let h = (b - a).num_milliseconds() as f64 / 3.6e6;
            sum += s.price * h;
            covered += h;
        }
    }
    let total = (to - from).num_milliseconds() as f64 / 3.6e6;
    if covered < total {
        let fill = c
            .price_at(from)
            .or_else(|| c.slots().last().map(|s| s.price));
        sum += fill.unwrap_or(0.0) * (total - covered);
    }
    sum
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::prices::Slot;

    #[test]
    fn cost_is_at_the_prices_of_the_charged_minutes() {
        let t = |h| Utc.with_ymd_and_hms(2024, 3, 4, h, 0, 0).unwrap();
        let slot = |h, p| Slot {
            start: t(h),
            end: t(h + 1),
            price: p,
        };
        let curve = PriceCurve::new(
            "EUR",
            vec![
                slot(18, 0.40),
                slot(19, 0.40),
                slot(20, 0.10),
                slot(21, 0.10),
            ],
        )
        .unwrap();
        let mut log = SessionLog::start(t(18), Some(20.0), false);
        log.account(t(20), Some(10.0), Some(&curve), true);
        log.account(t(22), Some(10.0), Some(&curve), false);
        assert!((log.energy_kwh - 20.0).abs() < 1e-9);
        assert!((log.cost - 2.0).abs() < 1e-9, "{}", log.cost);
        let r = log.close("car", "u", t(22), Some(60.0), 80.0, Some(&curve));
        // At once from 18:00: two hours at 0.40.
        assert!((r.at_once_cost - 8.0).abs() < 1e-9, "{}", r.at_once_cost);
        assert!(!r.deadline_met);
        assert!((r.shortfall_percent - 20.0).abs() < 1e-9);
    }
}
