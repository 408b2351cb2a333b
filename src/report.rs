//! The savings report: per vehicle and in total, for one month (local to
//! the configured zone), the energy, its cost at the prices of the minutes
//! really charged, the cost had it charged at once from plug-in, the
//! saving, the sessions and the deadlines met. Built from the stored
//! plug-in sessions, so the daemon (`/v1/report`) and the CLI without a
//! daemon give the same answer.

use std::sync::Mutex;

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
    let mut report = Report {
        month,
        time_zone,
        vehicles: Vec::new(),
        total: Row {
            vehicle: "total".into(),
            ..Row::default()
        },
    };
    for s in sessions {
        report.add(s);
    }
    report
}

impl Row {
    /// Counts one session in the row.
    fn add(&mut self, s: &SessionRecord) {
        self.energy_kwh += s.energy_kwh;
        self.cost += s.cost;
        self.at_once_cost += s.at_once_cost;
        self.saving = self.at_once_cost - self.cost;
        self.sessions += 1;
        self.deadlines_met += u32::from(s.deadline_met);
    }
}

impl Report {
    /// An empty report of `month` (its first day) in `tz`.
    fn empty(month: NaiveDate, time_zone: Tz) -> Report {
        summarize(
            month.format("%Y-%m").to_string(),
            time_zone,
            std::iter::empty(),
        )
    }

    /// Counts one session in its vehicle's row (kept sorted by id) and the
    /// total.
    fn add(&mut self, s: &SessionRecord) {
        let i = match self
            .vehicles
            .binary_search_by(|r| r.vehicle.as_str().cmp(&s.vehicle))
        {
            Ok(i) => i,
            Err(i) => {
                self.vehicles.insert(
                    i,
                    Row {
                        vehicle: s.vehicle.clone(),
                        ..Row::default()
                    },
                );
                i
            }
        };
        self.vehicles[i].add(s);
        self.total.add(s);
    }
}

/// This month's report, kept current as sessions are stored: the status
/// page, `status` and the metrics show it on every request, and summing a
/// month of sessions from the store each time would cost as much as the
/// fleet is large. Built from the store once at start
/// ([`MonthTally::load`]), before any session can be stored; after that
/// every stored session passes through [`MonthTally::add`], so nothing is
/// counted twice or missed. A new month starts empty.
#[derive(Debug, Default)]
pub struct MonthTally(Mutex<Option<Report>>);

impl MonthTally {
    /// Builds the month of `now` in `tz` from the store.
    pub fn load(
        &self,
        store: &Store,
        now: DateTime<Utc>,
        tz: Tz,
    ) -> Result<(), crate::store::StoreError> {
        let r = build(store, this_month(now, tz), tz, None)?;
        *self.0.lock().expect("month lock") = Some(r);
        Ok(())
    }

    /// The report of the month of `now` in `tz` (empty when the month has
    /// just begun, or when the zone changed since start: a reload of the
    /// policy; `smartcharged report` reads the store in the new zone).
    pub fn get(&self, now: DateTime<Utc>, tz: Tz) -> Report {
        let month = this_month(now, tz);
        let mut kept = self.0.lock().expect("month lock");
        let name = month.format("%Y-%m").to_string();
        match kept.as_ref() {
            Some(r) if r.month == name && r.time_zone == tz => r.clone(),
            _ => {
                let r = Report::empty(month, tz);
                *kept = Some(r.clone());
                r
            }
        }
    }

    /// Counts a session just stored, if it ended in the month kept (or in
    /// a later one, which then starts).
    pub fn add(&self, s: &SessionRecord) {
        let mut kept = self.0.lock().expect("month lock");
        let Some(r) = kept.as_mut() else {
            return;
        };
        let month = this_month(s.unplugged_at, r.time_zone);
        let name = month.format("%Y-%m").to_string();
        if name > r.month {
            *r = Report::empty(month, r.time_zone);
        }
        if name == r.month {
            r.add(s);
        }
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
