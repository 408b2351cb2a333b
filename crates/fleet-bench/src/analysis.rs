//! From the raw material to the numbers: the daemon's plans (its JSON log),
//! the commands as the simulator saw them arrive, and the vehicles' final
//! states. Pure functions, so the measurement itself is tested.
//!
//! **Block-edge lateness.** For each command the simulator accepted, the
//! plan in force is the vehicle's latest plan made at or before the
//! command's arrival. The instant the command was due is the last change of
//! that plan's desired state to the commanded one: a block start for START,
//! a block end for STOP, or the planning instant itself when the plan
//! already wanted that state when it was made (a car that starts charging
//! by itself on plug-in is stopped at once). Lateness = arrival - due, in
//! simulated seconds. A command the plan in force does not want (a START
//! outside every block, a STOP inside one) is counted as unmatched.

use std::collections::HashMap;
use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One `plan made` line of the daemon's log.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanLine {
    /// The vehicle.
    pub vehicle: String,
    /// Clock time the plan was made.
    pub made_at: DateTime<Utc>,
    /// Its blocks, `[start, end)`.
    pub blocks: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// Why it was made (`plugged in`, `periodic sweep`, ...).
    pub reason: String,
    /// Its cost at the curve's prices.
    pub cost: f64,
    /// The cost of charging as much at once.
    pub asap_cost: f64,
    /// Grid energy it plans, kWh.
    pub energy_kwh: f64,
    /// Whether it reaches the target by the deadline.
    pub feasible: bool,
}

/// What the daemon's log says, besides its plans.
#[derive(Debug, Default, Clone, Serialize)]
pub struct LogSummary {
    /// Lines read.
    pub lines: u64,
    /// WARN lines.
    pub warnings: u64,
    /// ERROR lines.
    pub errors: u64,
    /// Commands the daemon reports as sent.
    pub commands_sent: u64,
    /// The most frequent WARN/ERROR messages with their counts.
    pub top_problems: Vec<(String, u64)>,
}

/// Reads the daemon's JSON log to its end: its plans and a summary.
/// `copy` receives every line (the log file kept for inspection).
pub fn read_log(input: impl BufRead, mut copy: impl std::io::Write) -> (Vec<PlanLine>, LogSummary) {
    let mut plans = Vec::new();
    let mut sum = LogSummary::default();
    let mut problems: HashMap<String, u64> = HashMap::new();
    for line in input.lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(copy, "{line}");
        sum.lines += 1;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let f = &v["fields"];
        let msg = f["message"].as_str().unwrap_or_default();
        match v["level"].as_str() {
            Some("WARN") => sum.warnings += 1,
            Some("ERROR") => sum.errors += 1,
            _ => {}
        }
        if matches!(v["level"].as_str(), Some("WARN" | "ERROR")) {
            *problems.entry(msg.to_owned()).or_default() += 1;
        }
        match msg {
            "plan made" => {
                if let Some(p) = plan_line(f) {
                    plans.push(p);
                }
            }
            "command sent" => sum.commands_sent += 1,
            _ => {}
        }
    }
    let mut top: Vec<(String, u64)> = problems.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(8);
    sum.top_problems = top;
    (plans, sum)
}

fn plan_line(f: &serde_json::Value) -> Option<PlanLine> {
    let time = |s: &str| s.parse::<DateTime<Utc>>().ok();
    let blocks = f["schedule"]
        .as_str()?
        .split_whitespace()
        .map(|iv| {
            let (a, b) = iv.split_once('/')?;
            Some((time(a)?, time(b)?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(PlanLine {
        vehicle: f["vehicle.id"].as_str()?.to_owned(),
        made_at: time(f["made_at"].as_str()?)?,
        blocks,
        reason: f["reason"].as_str().unwrap_or_default().to_owned(),
        cost: f["cost"].as_f64().unwrap_or(0.0),
        asap_cost: f["asap_cost"].as_f64().unwrap_or(0.0),
        energy_kwh: f["energy_kwh"].as_f64().unwrap_or(0.0),
        feasible: f["feasible"].as_bool().unwrap_or(true),
    })
}

/// The plans of each vehicle, oldest first.
pub fn by_vehicle(plans: &[PlanLine]) -> HashMap<&str, Vec<&PlanLine>> {
    let mut m: HashMap<&str, Vec<&PlanLine>> = HashMap::new();
    for p in plans {
        m.entry(p.vehicle.as_str()).or_default().push(p);
    }
    for v in m.values_mut() {
        v.sort_by_key(|p| p.made_at);
    }
    m
}

/// A command as the simulator saw it arrive.
pub use enode_sim::CommandRecord as Arrival;

/// Block-edge lateness of every command, in simulated seconds.
#[derive(Debug, Default, Clone)]
pub struct Lateness {
    /// One sample per matched command.
    pub seconds: Vec<f64>,
    /// The instant each of those commands was due (same order).
    pub due: Vec<DateTime<Utc>>,
    /// Commands the plan in force did not ask for (or with no plan).
    pub unmatched: usize,
}

/// Commands due at the same instant as at least this many others share a
/// crowded edge (the cheap hours start and end on the hour for thousands
/// of cars).
pub const CROWDED_EDGE: usize = 100;

/// Lateness split by how many commands were due at the same instant:
/// whether it comes from bursts at shared edges or from single commands.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EdgeSplit {
    /// The most commands due at one instant.
    pub largest_edge: usize,
    /// Instants with at least [`CROWDED_EDGE`] commands due.
    pub crowded_edges: usize,
    /// Lateness of the commands due at those instants, simulated seconds.
    pub crowded: Percentiles,
    /// Lateness of every other command, simulated seconds.
    pub other: Percentiles,
}

impl Lateness {
    /// Splits the samples by the size of their edge (see [`EdgeSplit`]).
    pub fn by_edge(&self) -> EdgeSplit {
        let mut size: HashMap<DateTime<Utc>, usize> = HashMap::new();
        for d in &self.due {
            *size.entry(*d).or_default() += 1;
        }
        let (mut crowded, mut other) = (Vec::new(), Vec::new());
        for (s, d) in self.seconds.iter().zip(&self.due) {
            if size[d] >= CROWDED_EDGE {
                crowded.push(*s);
            } else {
                other.push(*s);
            }
        }
        EdgeSplit {
            largest_edge: size.values().copied().max().unwrap_or(0),
            crowded_edges: size.values().filter(|n| **n >= CROWDED_EDGE).count(),
            crowded: Percentiles::of(&crowded),
            other: Percentiles::of(&other),
        }
    }
}

/// Matches commands with the plan edges they carry out (see the module
/// documentation).
pub fn lateness(plans: &HashMap<&str, Vec<&PlanLine>>, commands: &[Arrival]) -> Lateness {
    let mut out = Lateness::default();
    for c in commands {
        let plan = plans
            .get(c.vehicle.as_str())
            .and_then(|ps| ps.iter().rev().find(|p| p.made_at <= c.at));
        let due = plan.and_then(|p| due(p, c));
        match due {
            Some(d) => {
                out.seconds
                    .push((c.at - d).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
                out.due.push(d);
            }
            None => out.unmatched += 1,
        }
    }
    out
}

/// The instant command `c` was due under plan `p`, if `p` asked for it.
fn due(p: &PlanLine, c: &Arrival) -> Option<DateTime<Utc>> {
    let inside = p.blocks.iter().find(|(s, e)| *s <= c.at && c.at < *e);
    match c.action.as_str() {
        "START" => {
            let start = match inside {
                Some((s, _)) => *s,
                // Arrived after its whole block: late by more than a block.
                None => p
                    .blocks
                    .iter()
                    .map(|(s, _)| *s)
                    .filter(|s| *s <= c.at && *s >= p.made_at)
                    .max()?,
            };
            Some(start.max(p.made_at))
        }
        "STOP" if inside.is_none() => Some(
            p.blocks
                .iter()
                .map(|(_, e)| *e)
                .filter(|e| *e <= c.at && *e > p.made_at)
                .max()
                .unwrap_or(p.made_at),
        ),
        _ => None,
    }
}

/// p50, p99 and max of a sample (nearest rank); zeros when empty.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Sample size.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Percentiles {
    /// Of `xs` (any order).
    pub fn of(xs: &[f64]) -> Percentiles {
        if xs.is_empty() {
            return Percentiles::default();
        }
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            n: v.len(),
            p50: rank(0.5),
            p99: rank(0.99),
            max: v[v.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 4, h, m, s).unwrap()
    }

    fn plan(
        vehicle: &str,
        made_at: DateTime<Utc>,
        blocks: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> PlanLine {
        PlanLine {
            vehicle: vehicle.into(),
            made_at,
            blocks: blocks.to_vec(),
            reason: "plugged in".into(),
            cost: 1.0,
            asap_cost: 2.0,
            energy_kwh: 10.0,
            feasible: true,
        }
    }

    fn cmd(vehicle: &str, at: DateTime<Utc>, action: &str) -> Arrival {
        Arrival {
            at,
            vehicle: vehicle.into(),
            action: action.into(),
        }
    }

    #[test]
    fn commands_are_measured_against_the_edge_of_the_plan_in_force() {
        let night = [(t(22, 0, 0), t(23, 30, 0))];
        let plans = vec![
            plan("a", t(18, 2, 10), &night),
            // A replan moves the block; later commands follow it.
            plan("b", t(18, 0, 0), &night),
            plan("b", t(21, 0, 0), &[(t(23, 0, 0), t(23, 45, 0))]),
        ];
        let plans_by = by_vehicle(&plans);
        let cmds = [
            // Stopped at once after planning: due when planned.
            cmd("a", t(18, 2, 11), "STOP"),
            cmd("a", t(22, 0, 2), "START"),
            cmd("a", t(23, 30, 1), "STOP"),
            cmd("b", t(23, 0, 3), "START"),
            cmd("b", t(23, 45, 4), "STOP"),
            // A START that arrives after its whole block is late from
            // the block's start.
            cmd("b", t(23, 50, 0), "START"),
            // Not asked for by the plan in force.
            cmd("b", t(23, 10, 0), "STOP"),
            cmd("ghost", t(23, 0, 0), "START"),
        ];
        let l = lateness(&plans_by, &cmds);
        assert_eq!(l.seconds, vec![1.0, 2.0, 1.0, 3.0, 4.0, 3000.0]);
        assert_eq!(l.unmatched, 2);
        assert_eq!(l.due[1], t(22, 0, 0));
    }

    #[test]
    fn lateness_is_split_by_the_size_of_the_edge() {
        let edge = t(2, 0, 0);
        let mut l = Lateness::default();
        for i in 0..CROWDED_EDGE {
            l.seconds.push(i as f64);
            l.due.push(edge);
        }
        l.seconds.extend([0.5, 0.25]);
        l.due.extend([t(3, 0, 0), t(3, 1, 0)]);
        let split = l.by_edge();
        assert_eq!(split.largest_edge, CROWDED_EDGE);
        assert_eq!(split.crowded_edges, 1);
        assert_eq!(split.crowded.n, CROWDED_EDGE);
        assert_eq!(split.crowded.max, (CROWDED_EDGE - 1) as f64);
        assert_eq!((split.other.n, split.other.max), (2, 0.5));
    }

    #[test]
    fn a_start_inside_a_block_when_planned_is_due_at_planning() {
        let plans = vec![plan("a", t(22, 10, 0), &[(t(22, 11, 0), t(23, 0, 0))])];
        let late = lateness(
            &by_vehicle(&plans),
            &[cmd(
                "a",
                t(22, 11, 0) + TimeDelta::milliseconds(250),
                "START",
            )],
        );
        assert_eq!(late.seconds, vec![0.25]);
        let plans = vec![plan("a", t(22, 30, 0), &[(t(22, 0, 0), t(23, 0, 0))])];
        let late = lateness(&by_vehicle(&plans), &[cmd("a", t(22, 30, 1), "START")]);
        assert_eq!(late.seconds, vec![1.0]);
    }

    #[test]
    fn log_lines_become_plans() {
        let log = concat!(
            r#"{"timestamp":"x","level":"INFO","fields":{"message":"plan made","vehicle.id":"v1","reason":"plugged in","blocks":2,"#,
            r#""schedule":"2024-03-04T22:00:00Z/2024-03-04T23:00:00Z 2024-03-05T02:00:00Z/2024-03-05T02:30:00Z","#,
            r#""made_at":"2024-03-04T18:02:10.5Z","energy_kwh":16.5,"cost":1.25,"asap_cost":2.5,"feasible":true,"deadline":"x"}}"#,
            "\n",
            r#"{"level":"WARN","fields":{"message":"enode request failed"}}"#,
            "\nnot json\n",
            r#"{"level":"INFO","fields":{"message":"command sent","vehicle.id":"v1"}}"#,
            "\n",
        );
        let mut copy = Vec::new();
        let (plans, sum) = read_log(log.as_bytes(), &mut copy);
        assert_eq!(copy, log.as_bytes());
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        assert_eq!(p.vehicle, "v1");
        assert_eq!(p.blocks.len(), 2);
        assert_eq!(
            p.blocks[1].1,
            Utc.with_ymd_and_hms(2024, 3, 5, 2, 30, 0).unwrap()
        );
        assert_eq!(p.made_at, t(18, 2, 10) + TimeDelta::milliseconds(500));
        assert_eq!((p.cost, p.asap_cost, p.energy_kwh), (1.25, 2.5, 16.5));
        assert_eq!(
            (sum.lines, sum.warnings, sum.errors, sum.commands_sent),
            (4, 1, 0, 1)
        );
        assert_eq!(
            sum.top_problems,
            vec![("enode request failed".to_owned(), 1)]
        );
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let xs: Vec<f64> = (1..=200).map(f64::from).collect();
        let p = Percentiles::of(&xs);
        assert_eq!((p.n, p.p50, p.p99, p.max), (200, 100.0, 198.0, 200.0));
        assert_eq!(Percentiles::of(&[]).n, 0);
        assert_eq!(Percentiles::of(&[7.0]).p99, 7.0);
    }
}
