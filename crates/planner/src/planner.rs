//! From a request to a plan: energy and minutes, the price of every
//! minute, the optimisation, and the costed blocks.

use chrono::{DateTime, Utc};

use crate::curve::{describe_sources, CurveBuilder, Gap, Piece, Slot};
use crate::dp::Dp;
use crate::error::PlanError;
use crate::extra::Extra;
use crate::greedy::Greedy;
use crate::plan::{kwh_short, Block, Plan};
use crate::problem::{quantise, Problem, Seg};
use crate::request::{PlanRequest, TieBreak};

/// Charging minutes needed for `grid_kwh` at `power_kw`:
/// `ceil(E / P × 60)` with a 1e-9 tolerance, so 10 kWh at 10 kW is 60
/// minutes even when the division rounds up by an ulp.
pub fn charge_minutes(grid_kwh: f64, power_kw: f64) -> f64 {
    (grid_kwh / power_kw * 60.0 - 1e-9).ceil().max(0.0)
}

/// A vehicle's goal, shared by single and site plans: the target capped
/// at the charge limit and the min SoC at the target (each cap said in a
/// warning), and the grid energy to any state of charge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Goal {
    /// State of charge now, percent.
    soc: f64,
    /// Usable battery capacity, kWh.
    battery_kwh: f64,
    /// Battery energy per grid energy.
    efficiency: f64,
    /// The vehicle's charge limit, percent (100 when unknown).
    pub cap: f64,
    /// The target, at most `cap`.
    pub target: f64,
    /// The min SoC, at most `target`.
    pub min_soc: f64,
}

impl Goal {
    /// The goal of a vehicle at `soc` wanting `(target, min_soc)` percent.
    pub(crate) fn new(
        soc: f64,
        battery_kwh: f64,
        efficiency: f64,
        (target, min_soc): (f64, f64),
        charge_limit: Option<f64>,
        warnings: &mut Vec<String>,
    ) -> Goal {
        let cap = charge_limit.unwrap_or(100.0);
        let mut target = target;
        if target > cap {
            warnings.push(format!(
                "target {target}% is above the vehicle's charge limit {cap}%; planned to {cap}%"
            ));
            target = cap;
        }
        let mut min_soc = min_soc;
        if min_soc > target {
            warnings.push(format!(
                "min_soc {min_soc}% is above the target {target}%; capped at the target"
            ));
            min_soc = target;
        }
        Goal {
            soc,
            battery_kwh,
            efficiency,
            cap,
            target,
            min_soc,
        }
    }

    /// Grid energy from now to `to` percent, kWh (0 when already there).
    pub(crate) fn grid(&self, to: f64) -> f64 {
        (to - self.soc).max(0.0) / 100.0 * self.battery_kwh / self.efficiency
    }
}

/// Says where prices were missing and what priced those minutes.
pub(crate) fn gap_warnings(gaps: &[Gap], warnings: &mut Vec<String>) {
    for g in gaps {
        warnings.push(format!(
            "no prices from {} to {}: priced with {}; blocks there are tentative",
            minute_time(g.start).format("%Y-%m-%dT%H:%MZ"),
            minute_time(g.end).format("%Y-%m-%dT%H:%MZ"),
            describe_sources(g.sources)
        ));
    }
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
    hint: Vec<(u32, u32)>,
    head: Vec<Piece>,
    head_gaps: Vec<Gap>,
    greedy: Greedy,
    dp: Dp,
    extra: Extra,
}

/// The first whole minute at or after `t`, in minutes since the epoch.
pub(crate) fn ceil_minute(t: DateTime<Utc>) -> i64 {
    let s = t.timestamp();
    let m = s.div_euclid(60);
    if s.rem_euclid(60) != 0 || t.timestamp_subsec_nanos() != 0 {
        m + 1
    } else {
        m
    }
}

pub(crate) fn minute_time(m: i64) -> DateTime<Utc> {
    // within the validated range of chrono
    DateTime::from_timestamp(m * 60, 0).unwrap_or_default()
}

/// [`minute_time`] for many minutes of a few days (a plan's block
/// edges): the date, the costly part, is computed once per day.
#[derive(Debug, Default)]
struct MinuteTimes {
    /// The day last converted (days since the epoch) and its date.
    day: Option<(i64, chrono::NaiveDate)>,
}

impl MinuteTimes {
    #[inline]
    fn at(&mut self, m: i64) -> DateTime<Utc> {
        let (day, minute) = (m.div_euclid(24 * 60), m.rem_euclid(24 * 60));
        let date = match self.day {
            Some((d, date)) if d == day => date,
            _ => {
                let date = minute_time(m).date_naive();
                self.day = Some((day, date));
                date
            }
        };
        // minute < 1440: always a valid time of day
        let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(minute as u32 * 60, 0)
            .unwrap_or_default();
        date.and_time(time).and_utc()
    }
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
        self.slots.reserve(req.prices.len());
        let slots = &mut self.slots;
        req.check_slots(&mut |s| slots.push(s))?;
        let mut warnings = Vec::new();
        let power = req.max_power_kw;
        let t0 = ceil_minute(req.now);
        let end = req.deadline.timestamp().div_euclid(60);
        let n = (end - t0).max(0) as u32;

        let goal = Goal::new(
            req.soc_percent,
            req.battery_kwh,
            req.efficiency,
            (req.target_percent, req.min_soc_percent),
            req.charge_limit_percent,
            &mut warnings,
        );
        let (cap, min_soc) = (goal.cap, goal.min_soc);
        let grid = |to: f64| goal.grid(to);
        let energy = grid(goal.target);
        let l = charge_minutes(energy, power);
        let forced = charge_minutes(grid(min_soc), power).min(l);

        CurveBuilder::build(&self.slots, t0, n, &mut self.pieces, &mut self.gaps);
        gap_warnings(&self.gaps, &mut warnings);

        // a running session charges on through the seconds before the
        // planning start when the plan continues it
        let lead_secs = if req.charging_now {
            (t0 * 60 - req.now.timestamp()) as f64
                - f64::from(req.now.timestamp_subsec_nanos()) / 1e9
        } else {
            0.0
        };
        let feasible = l <= f64::from(n);
        let mut shortfall = 0.0;
        self.chosen.clear();
        if !feasible {
            let got = f64::from(n) * power / 60.0 + lead_secs * power / 3600.0;
            shortfall = (energy - got).max(0.0);
            warnings.push(format!(
                "the deadline cannot be met: charging from now on until the deadline is {} short",
                kwh_short(shortfall)
            ));
            if n > 0 {
                self.chosen.push((0, n));
            }
        } else if l > 0.0 {
            let l = l as u32;
            // minutes before the deadline the last block may end; beyond the
            // horizon it cannot bind
            let finish = req
                .finish_by_departure_minutes
                .map_or(0, |f| n.saturating_sub(f));
            // a plan that continues the running session charges the seconds
            // before the first whole minute too: it may need a minute less
            let lead_kwh = power * lead_secs / 3600.0;
            let shorter = (lead_secs > 0.0)
                .then(|| {
                    let fewer = |kwh: f64| charge_minutes((kwh - lead_kwh).max(0.0), power) as u32;
                    (fewer(energy), fewer(grid(min_soc)))
                })
                .filter(|&(m, _)| m >= 1 && m < l);
            let mut continued = None;
            if let Some((m, f)) = shorter {
                // minute 0 forced: only plans that go on charging
                let mut w = Vec::new();
                self.solve_minutes(req, n, m, f.clamp(1, m), finish, &mut w)?;
                let cost = self.chosen_cost(power) + self.lead_price(t0) * lead_kwh;
                continued = Some((std::mem::take(&mut self.chosen), cost, w));
            }
            let before = warnings.len();
            self.solve_minutes(req, n, l, forced as u32, finish, &mut warnings)?;
            let mut problem_l = (l, forced as u32);
            if let Some((chosen, cost, w)) = continued {
                let head = if self.chosen.first().is_some_and(|b| b.0 == 0) {
                    self.lead_price(t0) * lead_kwh
                } else {
                    0.0
                };
                if cost <= self.chosen_cost(power) + head {
                    self.chosen = chosen;
                    warnings.truncate(before);
                    warnings.extend(w);
                    let (m, f) = shorter.unwrap_or_default();
                    problem_l = (m, f.clamp(1, m));
                    self.build_segs(problem_l.1, finish);
                }
            }
            if let Some(price) = req.opportunistic_price {
                let problem = problem(&self.segs, req, n, problem_l.0, finish);
                let to_cap = charge_minutes(grid(cap), power).min(f64::from(n)) as u32;
                let more = to_cap.saturating_sub(problem_l.0);
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
        } else if req.finish_by_departure_minutes.is_some() {
            warnings.push(
                "nothing to charge: no block ends near the deadline (finish_by_departure_minutes)"
                    .to_string(),
            );
        }

        // with charging_now, a block from the planning start continues the
        // session: it starts at `now`, and the seconds before the first whole
        // minute are charged (and priced) too
        let head_secs = if self.chosen.first().is_some_and(|b| b.0 == 0) {
            lead_secs
        } else {
            0.0
        };
        let head = if head_secs > 0.0 {
            CurveBuilder::build(&self.slots, t0 - 1, 1, &mut self.head, &mut self.head_gaps);
            self.head.first().map_or((0.0, false), |p| {
                (p.price * power * head_secs / 3600.0, p.tentative)
            })
        } else {
            (0.0, false)
        };
        let mut blocks = Vec::with_capacity(self.chosen.len());
        let mut times = MinuteTimes::default();
        let (mut total_cost, mut total_energy, mut minutes) = (0.0, 0.0, 0u32);
        for (i, &(a, b)) in self.chosen.iter().enumerate() {
            let (mut cost, mut tentative) = self.cost(a, b, power);
            let mut e = f64::from(b - a) * power / 60.0;
            let mut start = times.at(t0 + i64::from(a));
            if i == 0 && head_secs > 0.0 {
                start = req.now;
                cost += head.0;
                tentative |= head.1;
                e += power * head_secs / 3600.0;
            }
            total_cost += cost;
            total_energy += e;
            minutes += b - a;
            blocks.push(Block {
                start,
                end: times.at(t0 + i64::from(b)),
                energy_kwh: e,
                cost,
                tentative,
            });
        }
        let asap_cost = self.cost(0, minutes, power).0 + head.0;
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

    /// Fills `chosen` with the best plan of `l` minutes, the first
    /// `forced` of them charged whatever the price.
    fn solve_minutes(
        &mut self,
        req: &PlanRequest,
        n: u32,
        l: u32,
        forced: u32,
        finish: u32,
        warnings: &mut Vec<String>,
    ) -> Result<(), PlanError> {
        self.build_segs(forced, finish);
        let mut problem = problem(&self.segs, req, n, l, finish);
        if !solve(
            &mut self.greedy,
            &mut self.dp,
            &problem,
            &mut self.hint,
            &mut self.chosen,
        )? {
            // only the latest end can conflict with the rest: one block
            // from the planning start is always allowed without it
            warnings.push(format!(
                "no plan ends within {} minutes of the deadline with the other constraints; planned without finish_by_departure_minutes",
                req.finish_by_departure_minutes.unwrap_or(0)
            ));
            problem.finish = 0;
            if !solve(
                &mut self.greedy,
                &mut self.dp,
                &problem,
                &mut self.hint,
                &mut self.chosen,
            )? {
                // unreachable: one block from now on is always allowed
                self.chosen.clear();
                self.chosen.push((0, l));
            }
        }
        Ok(())
    }

    /// The exact single-vehicle choice on runs the caller prices: `l` of
    /// the minutes of `segs` (tiling `[0, n)`, none forced) with the
    /// smallest key under `rules`, or `None` when no plan keeps them. The
    /// site planner prices the minutes a vehicle may not use so high that
    /// no optimal plan takes one when a plan without exists.
    ///
    /// `known`, when it is an allowed plan of `l` minutes (a vehicle's
    /// current plan), bounds the search: it prunes far more than a plan
    /// repaired from the relaxed optimum, whose filled pauses run into the
    /// priced-out minutes.
    pub(crate) fn choose(
        &mut self,
        segs: &[Seg],
        n: u32,
        l: u32,
        rules: Rules,
        later: bool,
        known: &[(u32, u32)],
    ) -> Result<Option<&[(u32, u32)]>, PlanError> {
        let p = rules.problem(segs, n, l, later, false, 0);
        let minutes: u32 = known.iter().map(|b| b.1 - b.0).sum();
        self.dp.known = (minutes == l && !known.is_empty() && p.allows(known)).then(|| {
            known
                .iter()
                .flat_map(|&(a, b)| {
                    let first = segs.partition_point(|s| s.start + s.len <= a);
                    segs[first..]
                        .iter()
                        .take_while(move |s| s.start < b)
                        .map(move |s| {
                            let (lo, hi) = (a.max(s.start), b.min(s.start + s.len));
                            i128::from(s.c) * i128::from(hi - lo)
                        })
                })
                .sum()
        });
        let found = solve(
            &mut self.greedy,
            &mut self.dp,
            &p,
            &mut self.hint,
            &mut self.chosen,
        );
        self.dp.known = None;
        Ok(found?.then_some(self.chosen.as_slice()))
    }

    /// Limits the exact solver of [`Planner::choose`] to `cells` table
    /// cells from now on (`None`: no limit beyond its table cap).
    pub(crate) fn set_work(&mut self, cells: Option<u64>) {
        self.dp.work_left = cells;
        self.dp.out_of_work = false;
        self.dp.work_done = 0;
    }

    /// Table cells the exact solver filled since [`Planner::set_work`].
    pub(crate) fn work_done(&self) -> u64 {
        self.dp.work_done
    }

    /// Whether a solve was refused because the work set by
    /// [`Planner::set_work`] could not pay for it; every later one is.
    pub(crate) fn out_of_work(&self) -> bool {
        self.dp.out_of_work
    }

    /// Cost of the chosen minutes.
    fn chosen_cost(&self, power: f64) -> f64 {
        self.chosen
            .iter()
            .map(|&(a, b)| self.cost(a, b, power).0)
            .sum()
    }

    /// Price of the minute before the first planned one (`t0`), per kWh.
    fn lead_price(&mut self, t0: i64) -> f64 {
        CurveBuilder::build(&self.slots, t0 - 1, 1, &mut self.head, &mut self.head_gaps);
        self.head.first().map_or(0.0, |p| p.price)
    }

    /// Price runs for the solvers: equal quantised prices joined, split
    /// where the forced part ends and where the last block may end at the
    /// earliest (`finish`), so both are run boundaries for the exact solver;
    /// with `finish`, runs ending there or later have their first and last
    /// minutes cut off as runs of their own.
    fn build_segs(&mut self, forced: u32, finish: u32) {
        self.segs.clear();
        if forced == 0 && finish == 0 {
            // nothing to cut (the usual request): only the joining of equal
            // prices below, without the cuts' bookkeeping per piece; the
            // run being joined stays out of the vector until it ends
            let mut pieces = self.pieces.iter();
            let Some(first) = pieces.next() else {
                return;
            };
            self.segs.reserve(self.pieces.len());
            let mut run = Seg {
                start: first.start,
                len: first.len,
                c: quantise(first.price),
                forced: false,
            };
            for p in pieces {
                let c = quantise(p.price);
                if c == run.c {
                    run.len += p.len;
                } else {
                    self.segs.push(run);
                    run = Seg {
                        start: p.start,
                        len: p.len,
                        c,
                        forced: false,
                    };
                }
            }
            self.segs.push(run);
            return;
        }
        for p in &self.pieces {
            let c = quantise(p.price);
            let mut push = |start: u32, end: u32| {
                if start >= end {
                    return;
                }
                let is_forced = end <= forced;
                if let Some(last) = self.segs.last_mut() {
                    if last.c == c
                        && last.forced == is_forced
                        && last.start + last.len == start
                        && start != finish
                    {
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
            let mut at = p.start;
            for cut in [forced.min(finish), forced.max(finish)] {
                if at < cut && cut < p.end() {
                    push(at, cut);
                    at = cut;
                }
            }
            push(at, p.end());
        }
        if finish > 0 {
            // the last block may be a single minute at the start or the end
            // of a run that ends at `finish` or later: the latest end keeps
            // it from vanishing, so its other edge is a run edge too
            let from = self.segs.partition_point(|s| s.start + s.len < finish);
            let mut i = from;
            while i < self.segs.len() {
                let s = self.segs[i];
                let mut cuts = [s.start + 1, s.start + s.len - 1];
                if s.start < finish {
                    // the run ends at `finish`: only its last minute
                    cuts[0] = cuts[1];
                }
                let mut at = s.start;
                let mut first = true;
                for cut in cuts {
                    if at < cut && cut < s.start + s.len {
                        let piece = Seg {
                            start: at,
                            len: cut - at,
                            ..s
                        };
                        if first {
                            self.segs[i] = piece;
                            first = false;
                        } else {
                            i += 1;
                            self.segs.insert(i, piece);
                        }
                        at = cut;
                    }
                }
                if !first {
                    i += 1;
                    self.segs.insert(
                        i,
                        Seg {
                            start: at,
                            len: s.start + s.len - at,
                            ..s
                        },
                    );
                }
                i += 1;
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

/// A vehicle's block rules as a request states them: shared by single
/// and site plans, so both hold a plan to the same rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rules {
    /// The most blocks, or no limit.
    pub max_blocks: Option<u32>,
    /// Shortest block but the last.
    pub min_block_minutes: Option<u32>,
    /// Shortest pause between blocks.
    pub min_pause_minutes: Option<u32>,
}

impl Rules {
    /// The problem of charging `l` of the `n` minutes of `segs` under
    /// these rules.
    pub(crate) fn problem<'a>(
        &self,
        segs: &'a [Seg],
        n: u32,
        l: u32,
        later: bool,
        running: bool,
        finish: u32,
    ) -> Problem<'a> {
        Problem {
            segs,
            n,
            l,
            max_blocks: self.max_blocks,
            // a block longer than the whole charge can only be the last:
            // anything above l + 1 means the same
            min_block: self.min_block_minutes.unwrap_or(1).min(l + 1),
            later,
            running,
            // no pause is as long as the horizon
            pause: self.min_pause_minutes.unwrap_or(0).min(n),
            finish,
        }
    }

    /// Whether `blocks` (sorted, not touching, inside `[0, n)`) keep the
    /// rules.
    pub(crate) fn kept_by(&self, blocks: &[(u32, u32)], n: u32) -> bool {
        let l = blocks.iter().map(|b| b.1 - b.0).sum();
        self.problem(&[], n, l, false, false, 0).allows(blocks)
    }
}

/// The problem of charging `l` minutes over `segs` with the request's
/// constraints.
fn problem<'a>(segs: &'a [Seg], req: &PlanRequest, n: u32, l: u32, finish: u32) -> Problem<'a> {
    let rules = Rules {
        max_blocks: req.max_blocks,
        min_block_minutes: req.min_block_minutes,
        min_pause_minutes: req.min_pause_minutes,
    };
    rules.problem(
        segs,
        n,
        l,
        req.tie_break == TieBreak::Later,
        req.charging_now,
        finish,
    )
}

/// Solves `p` into `out`: the fast path when its answer is allowed, else
/// the exact programme (first without the pause limit, whose answer is
/// optimal too when it happens to respect it). Ok(false) when no plan
/// satisfies the constraints.
fn solve(
    greedy: &mut Greedy,
    dp: &mut Dp,
    p: &Problem,
    hint: &mut Vec<(u32, u32)>,
    out: &mut Vec<(u32, u32)>,
) -> Result<bool, PlanError> {
    hint.clear();
    let answered = greedy.solve(p, out);
    if answered {
        if p.allows(out) {
            return Ok(true);
        }
        hint.extend_from_slice(out);
    }
    // without a block limit or a latest end, the fast path's answer is the
    // optimum without the pause already
    let relaxed_known = answered && p.max_blocks.is_none() && p.finish == 0;
    if p.pause > 1 && p.min_block == 1 && !relaxed_known {
        // over price runs, much faster than minute by minute
        let relaxed = Problem { pause: 0, ..*p };
        if dp.solve(&relaxed, hint, out)? {
            if p.allows(out) {
                return Ok(true);
            }
            hint.clear();
            hint.extend_from_slice(out);
        }
    }
    dp.solve(p, hint, out)
}
