//! From a request to a plan: energy and minutes, the price of every
//! minute, the optimisation, and the costed blocks.

use chrono::{DateTime, Utc};

use crate::curve::{describe_sources, CurveBuilder, Gap, Piece, Slot};
use crate::dp::Dp;
use crate::error::PlanError;
use crate::extra::Extra;
use crate::greedy::Greedy;
use crate::plan::{Block, Plan};
use crate::problem::{quantise, Problem, Seg};
use crate::request::{PlanRequest, TieBreak};

/// Charging minutes needed for `grid_kwh` at `power_kw`:
/// `ceil(E / P × 60)` with a 1e-9 tolerance, so 10 kWh at 10 kW is 60
/// minutes even when the division rounds up by an ulp.
pub fn charge_minutes(grid_kwh: f64, power_kw: f64) -> f64 {
    (grid_kwh / power_kw * 60.0 - 1e-9).ceil().max(0.0)
}

/// A planner with reusable buffers: planning allocates little beyond the
/// returned plan once the buffers have grown.
#[derive(Debug, Default)]
pub struct Planner {
    slots: Vec<Slot>,
    pieces: Vec<Piece>,
    gaps: Vec<Gap>,
    segs: Vec<Seg>,
    chosen: Vec<(u32, u32)>,
    greedy: Greedy,
    dp: Dp,
    extra: Extra,
}

/// The first whole minute at or after `t`, in minutes since the epoch.
fn ceil_minute(t: DateTime<Utc>) -> i64 {
    let s = t.timestamp();
    let m = s.div_euclid(60);
    if s.rem_euclid(60) != 0 || t.timestamp_subsec_nanos() != 0 {
        m + 1
    } else {
        m
    }
}

fn minute_time(m: i64) -> DateTime<Utc> {
    // within the validated range of chrono
    DateTime::from_timestamp(m * 60, 0).unwrap_or_default()
}

impl Planner {
    /// A planner with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans one request: validates it, then returns the cheapest plan.
    pub fn plan(&mut self, req: &PlanRequest) -> Result<Plan, PlanError> {
        req.check_scalars()?;
        self.slots.clear();
        let slots = &mut self.slots;
        req.check_slots(&mut |s| slots.push(s))?;
        let mut warnings = Vec::new();
        let power = req.max_power_kw;
        let t0 = ceil_minute(req.now);
        let end = req.deadline.timestamp().div_euclid(60);
        let n = (end - t0).max(0) as u32;

        let cap = req.charge_limit_percent.unwrap_or(100.0);
        let mut target = req.target_percent;
        if target > cap {
            warnings.push(format!(
                "target {target}% is above the vehicle's charge limit {cap}%; planned to {cap}%"
            ));
            target = cap;
        }
        let mut min_soc = req.min_soc_percent;
        if min_soc > target {
            warnings.push(format!(
                "min_soc {min_soc}% is above the target {target}%; capped at the target"
            ));
            min_soc = target;
        }
        let grid =
            |to: f64| (to - req.soc_percent).max(0.0) / 100.0 * req.battery_kwh / req.efficiency;
        let energy = grid(target);
        let l = charge_minutes(energy, power);
        let forced = charge_minutes(grid(min_soc), power).min(l);

        CurveBuilder::build(&self.slots, t0, n, &mut self.pieces, &mut self.gaps);
        for g in &self.gaps {
            warnings.push(format!(
                "no prices from {} to {}: priced with {}; blocks there are tentative",
                minute_time(g.start).format("%Y-%m-%dT%H:%MZ"),
                minute_time(g.end).format("%Y-%m-%dT%H:%MZ"),
                describe_sources(g.sources)
            ));
        }

        let feasible = l <= f64::from(n);
        let mut shortfall = 0.0;
        self.chosen.clear();
        if !feasible {
            let got = f64::from(n) * power / 60.0;
            shortfall = energy - got;
            warnings.push(format!(
                "the deadline cannot be met: charging from now on until the deadline is {shortfall:.2} kWh short"
            ));
            if n > 0 {
                self.chosen.push((0, n));
            }
        } else if l > 0.0 {
            let l = l as u32;
            self.build_segs(forced as u32);
            let problem = Problem {
                segs: &self.segs,
                n,
                l,
                max_blocks: req.max_blocks,
                // a block longer than the whole charge can only be the last:
                // anything above l + 1 means the same
                min_block: req.min_block_minutes.unwrap_or(1).min(l + 1),
                later: req.tie_break == TieBreak::Later,
            };
            let fast =
                self.greedy.solve(&problem, &mut self.chosen) && satisfies(&problem, &self.chosen);
            if !fast && !self.dp.solve(&problem, &mut self.chosen)? {
                // unreachable: one block from now on is always allowed
                self.chosen.clear();
                self.chosen.push((0, l));
            }
            if let Some(price) = req.opportunistic_price {
                let to_cap = charge_minutes(grid(cap), power).min(f64::from(n)) as u32;
                let more = to_cap.saturating_sub(l);
                if more > 0 {
                    self.extra.add(
                        &problem,
                        &self.pieces,
                        quantise(price),
                        more,
                        &mut self.chosen,
                    );
                }
            }
        }

        let mut blocks = Vec::with_capacity(self.chosen.len());
        let (mut total_cost, mut total_energy, mut minutes) = (0.0, 0.0, 0u32);
        for &(a, b) in &self.chosen {
            let (cost, tentative) = self.cost(a, b, power);
            let e = f64::from(b - a) * power / 60.0;
            total_cost += cost;
            total_energy += e;
            minutes += b - a;
            blocks.push(Block {
                start: minute_time(t0 + i64::from(a)),
                end: minute_time(t0 + i64::from(b)),
                energy_kwh: e,
                cost,
                tentative,
            });
        }
        let asap_cost = self.cost(0, minutes, power).0;
        Ok(Plan {
            feasible,
            charge_minutes: minutes,
            energy_kwh: total_energy,
            cost: total_cost,
            asap_cost,
            shortfall_kwh: shortfall,
            blocks,
            warnings,
        })
    }

    /// Price runs for the solvers: equal quantised prices joined, split
    /// where the forced part ends.
    fn build_segs(&mut self, forced: u32) {
        self.segs.clear();
        for p in &self.pieces {
            let c = quantise(p.price);
            let mut push = |start: u32, end: u32| {
                if start >= end {
                    return;
                }
                let is_forced = end <= forced;
                if let Some(last) = self.segs.last_mut() {
                    if last.c == c && last.forced == is_forced && last.start + last.len == start {
                        last.len += end - start;
                        return;
                    }
                }
                self.segs.push(Seg {
                    start,
                    len: end - start,
                    c,
                    forced: is_forced,
                });
            };
            if p.start < forced && forced < p.end() {
                push(p.start, forced);
                push(forced, p.end());
            } else {
                push(p.start, p.end());
            }
        }
    }

    /// Cost of charging minutes `[a, b)` and whether a forecast prices
    /// any of them.
    fn cost(&self, a: u32, b: u32, power: f64) -> (f64, bool) {
        let mut cost = 0.0;
        let mut tentative = false;
        let first = self.pieces.partition_point(|p| p.end() <= a);
        for p in &self.pieces[first..] {
            if p.start >= b {
                break;
            }
            let lo = a.max(p.start);
            let hi = b.min(p.end());
            cost += p.price * power * f64::from(hi - lo) / 60.0;
            tentative |= p.tentative;
        }
        (cost, tentative)
    }
}

/// Whether a plan respects the block limit and the shortest block.
fn satisfies(p: &Problem, blocks: &[(u32, u32)]) -> bool {
    if let Some(k) = p.max_blocks {
        if blocks.len() > k as usize {
            return false;
        }
    }
    let but_last = blocks.len().saturating_sub(1);
    blocks[..but_last]
        .iter()
        .all(|&(a, b)| b - a >= p.min_block)
}
