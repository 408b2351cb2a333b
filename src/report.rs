//! The savings report: per vehicle and in total, for one month (local to
//! the configured zone), the energy, its cost at the prices of the minutes
//! really charged, the cost had it charged at once from plug-in, the
//! saving, the sessions and the deadlines met. Built from the stored
//! plug-in sessions, so the daemon (`/v1/report`) and the CLI without a
//! daemon give the same answer.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::daemon::sessions::SessionRecord;
use crate::store::Store;

/// One line of the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The vehicle, or "total".
    pub vehicle: String,
    /// Grid energy, kWh.
    pub energy_kwh: f64,
    /// Cost at the prices of the minutes charged.
    pub cost: f64,
    /// Cost had it charged at once from plug-in.
    pub at_once_cost: f64,
    /// `at_once_cost - cost`.
    pub saving: f64,
    /// Plug-in sessions that ended in the month.
    pub sessions: u32,
    /// Of those, how many reached the target.
    pub deadlines_met: u32,
}

/// The report of one month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// "YYYY-MM".
    pub month: String,
    /// The zone the month is local to.
    pub time_zone: Tz,
    /// Per vehicle, by id.
    pub vehicles: Vec<Row>,
    /// All vehicles.
    pub total: Row,
}

/// Reads "YYYY-MM" (years 2000-2999).
pub fn parse_month(text: &str) -> Result<NaiveDate, String> {
    let bad = || {
        format!(
            "{:?} is not a month: use YYYY-MM",
            crate::limits::clip(text)
        )
    };
    if text.len() != 7 {
        return Err(bad());
    }
    let d = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    if !(2000..3000).contains(&d.year()) {
        return Err(bad());
    }
    Ok(d)
}

/// The month of `now` in `tz`, as its first day.
pub fn this_month(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    let d = now.with_timezone(&tz).date_naive();
    d.with_day(1).expect("day 1 exists")
}

/// The report of `month` (its first day) in `tz`, for one vehicle or all.
pub fn build(
    store: &Store,
    month: NaiveDate,
    tz: Tz,
    vehicle: Option<&str>,
) -> Result<Report, crate::store::StoreError> {
    let next = month
        .checked_add_months(chrono::Months::new(1))
        .expect("a month after a year below 3000");
    let at = |d: NaiveDate| {
        crate::daemon::policy::local_instant(tz, d.and_hms_opt(0, 0, 0).expect("midnight"))
    };
    let sessions = store.sessions_between(at(month), at(next))?;
    Ok(summarize(
        month.format("%Y-%m").to_string(),
        tz,
        sessions
            .iter()
            .filter(|s| vehicle.is_none_or(|v| s.vehicle == v)),
    ))
}

/// Sums sessions into per-vehicle rows and a total.
pub fn summarize<'a>(
    month: String,
    time_zone: Tz,
    sessions: impl Iterator<Item = &'a SessionRecord>,
) -> Report {
    let mut rows: Vec<Row> = Vec::new();
    let mut total = Row {
        vehicle: "total".into(),
        ..Row::default()
    };
    for s in sessions {
        let i = match rows.iter().position(|r| r.vehicle == s.vehicle) {
            Some(i) => i,
            None => {
                rows.push(Row {
                    vehicle: s.vehicle.clone(),
                    ..Row::default()
                });
                rows.len() - 1
            }
        };
        for r in [&mut rows[i], &mut total] {
            r.energy_kwh += s.energy_kwh;
            r.cost += s.cost;
            r.at_once_cost += s.at_once_cost;
            r.saving = r.at_once_cost - r.cost;
            r.sessions += 1;
            r.deadlines_met += u32::from(s.deadline_met);
        }
    }
    rows.sort_unstable_by(|a, b| a.vehicle.cmp(&b.vehicle));
    Report {
        month,
        time_zone,
        vehicles: rows,
        total,
    }
}

impl Report {
    /// The report as CSV (a header, one line per vehicle, then the total).
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "month,vehicle,energy_kwh,cost,at_once_cost,saving,sessions,deadlines_met\n",
        );
        for r in self.vehicles.iter().chain([&self.total]) {
            s.push_str(&format!(
                "{},{},{:.3},{:.4},{:.4},{:.4},{},{}\n",
                self.month,
                r.vehicle,
                r.energy_kwh,
                r.cost,
                r.at_once_cost,
                r.saving,
                r.sessions,
                r.deadlines_met
            ));
        }
        s
    }

    /// The report as a table for people.
    pub fn table(&self) -> String {
        let mut s = format!(
            "Savings report {} ({})\n{:<16} {:>10} {:>10} {:>10} {:>10} {:>8} {:>6}\n",
            self.month,
            self.time_zone,
            "VEHICLE",
            "ENERGY kWh",
            "COST",
            "AT ONCE",
            "SAVING",
            "SESSIONS",
            "MET"
        );
        for r in self.vehicles.iter().chain([&self.total]) {
            s.push_str(&format!(
                "{:<16} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>8} {:>6}\n",
                r.vehicle,
                r.energy_kwh,
                r.cost,
                r.at_once_cost,
                r.saving,
                r.sessions,
                r.deadlines_met
            ));
        }
        s
    }
}
