//! Keeping each vehicle's block rules in the joint plan: a plan that
//! keeps the rules and the limit, built and improved one vehicle at a
//! time with the exact single-vehicle solver, and a lower bound for it.
//!
//! A vehicle is replanned against the others' current plans: the minutes
//! where the spare power (the limit less the reserved power and every
//! other vehicle's load) does not admit it are priced above any plan
//! without them, and its own min-SoC minutes below any plan without
//! them, so the exact solver (which knows the rules) takes none of the
//! first and all of the second whenever a plan that keeps its rules
//! allows it; its answer is checked minute by minute all the same.

use super::Car;
use crate::error::PlanError;
use crate::planner::Planner;
use crate::problem::Seg;

/// Most rounds of replanning every vehicle against the others after the
/// first (which repairs): each round costs one or two exact solves per
/// vehicle that something moved around, and the cost rarely moves after
/// the second.
const MAX_ROUNDS: usize = 4;

/// The most windows the fallback adds to a vehicle's plan once the work
/// budget is spent: each is the longest that fits, so a few fill what
/// room there is, and the bound keeps the fallback linear in the horizon.
const FALLBACK_WINDOWS: usize = 64;

/// The best windows the fallback tries for each one it adds: the ones
/// after those are shorter or dearer, and trying every window of a long
/// horizon against the rules took seconds on 64 vehicles and 7 days.
const FALLBACK_TRIES: usize = 16;

/// Keys and penalties stay below this, so no sum the solver forms
/// overflows (it shifts minute costs by 64 bits in an `i128`).
const KEY_ROOM: i128 = 1 << 60;

/// One vehicle's part of a plan that keeps the rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Part {
    /// Charging runs, sorted, not touching; the min-SoC minutes included.
    pub runs: Vec<(u32, u32)>,
    /// Minutes charged.
    pub minutes: u32,
    /// Exact cost of the minutes beyond the min-SoC schedule: quantised
    /// price × watts per minute.
    pub key: i128,
}

/// Why a vehicle's rules are not kept, when they are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Broken {
    /// Its min-SoC minutes (which come first) already break them.
    MinSoc,
    /// The exact solver refused the vehicle as too large.
    TooLarge,
}

/// A plan for all vehicles and what it cost to find.
#[derive(Debug, Clone)]
pub(super) struct Joint {
    pub parts: Vec<Part>,
    /// Per vehicle, why its rules could not be kept.
    pub broken: Vec<Option<Broken>>,
}

/// What the replanning works with.
pub(super) struct Enforcer<'a> {
    pub cars: &'a [Car],
    /// Quantised price of every minute of the horizon.
    pub price: Vec<i64>,
    /// Power the plan may draw at each minute, watts.
    pub lim: Vec<i64>,
    /// Each vehicle's min-SoC minutes.
    pub fixed: Vec<Vec<bool>>,
    /// Each vehicle's min-SoC runs.
    pub fixed_runs: Vec<Vec<(u32, u32)>>,
    /// Priority order.
    pub order: &'a [usize],
    pub later: bool,
    pub planner: Planner,
    pub segs: Vec<Seg>,
}

/// A vehicle's best plan against a load, and whether the pricing that
/// found it was exact (no price compression).
struct Found {
    part: Part,
    exact: bool,
}

impl Enforcer<'_> {
    /// The load of all `parts`, watts per minute.
    fn load(&self, parts: &[Part]) -> Vec<i64> {
        let mut load = vec![0i64; self.lim.len()];
        for (c, p) in self.cars.iter().zip(parts) {
            add(&mut load, &p.runs, c.watts);
        }
        load
    }

    /// The min-SoC runs of every vehicle, as parts.
    pub fn forced_only(&self) -> Vec<Part> {
        (0..self.cars.len())
            .map(|i| self.part(i, self.fixed_runs[i].clone()))
            .collect()
    }

    pub fn part(&self, i: usize, runs: Vec<(u32, u32)>) -> Part {
        let w = i128::from(self.cars[i].watts);
        let (mut minutes, mut key) = (0, 0i128);
        for &(a, b) in &runs {
            minutes += b - a;
            for t in a..b {
                if !self.fixed[i][t as usize] {
                    key += i128::from(self.price[t as usize]) * w;
                }
            }
        }
        Part { runs, minutes, key }
    }

    /// Whether vehicle `i`'s part keeps its rules.
    fn keeps(&self, i: usize, part: &Part) -> bool {
        let c = &self.cars[i];
        c.rules.kept_by(&part.runs, c.n)
    }

    /// From `seed`, a plan where every vehicle keeps its rules (unless
    /// its min-SoC minutes break them): the vehicles that break them are
    /// taken out, then each of them and each vehicle short of its target
    /// is replanned against the others in priority order, then every
    /// vehicle in turn while one gains minutes or cost.
    pub fn enforce(&mut self, seed: Vec<Part>) -> Joint {
        let mut parts = seed;
        // the vehicles that break their rules start again from their
        // min-SoC minutes, so none is planned around another's broken plan
        for (i, part) in parts.iter_mut().enumerate() {
            if !self.keeps(i, part) {
                *part = self.part(i, self.fixed_runs[i].clone());
            }
        }
        let mut broken = vec![None; self.cars.len()];
        let mut load = self.load(&parts);
        // changes so far, and how many each vehicle was last planned against
        let (mut changes, mut seen) = (0usize, vec![usize::MAX; self.cars.len()]);
        for round in 0..=MAX_ROUNDS {
            let before = changes;
            for k in 0..self.order.len() {
                let i = self.order[k];
                let (w, need) = (self.cars[i].watts, self.cars[i].need);
                let ok = broken[i].is_none() && self.keeps(i, &parts[i]);
                if round == 0 && ok && parts[i].minutes >= need {
                    continue;
                }
                if self.spent() {
                    // no work left to improve: a vehicle not yet repaired,
                    // or short, gets more minutes that keep its rules
                    // without a search
                    if !ok || parts[i].minutes < need {
                        sub(&mut load, &parts[i].runs, w);
                        if self.fall_back(i, &load, ok, &mut parts[i], &mut broken[i]) {
                            changes += 1;
                        }
                        add(&mut load, &parts[i].runs, w);
                    }
                    continue;
                }
                // nothing moved since it was planned against the others
                if round > 0 && (broken[i].is_some() || seen[i] == changes) {
                    continue;
                }
                sub(&mut load, &parts[i].runs, w);
                let found = if ok {
                    // its own plan stays possible: more minutes, or the same
                    // number cheaper
                    let cur = parts[i].minutes;
                    match (cur < need).then(|| self.solve(i, &load, need, &[])) {
                        Some(Ok(Some(f))) => Ok(Some(f)),
                        _ => {
                            let known = std::mem::take(&mut parts[i].runs);
                            let f = self.solve(i, &load, cur, &known);
                            parts[i].runs = known;
                            f
                        }
                    }
                } else {
                    let forced = self.fixed_runs[i].iter().map(|r| r.1 - r.0).sum();
                    self.best(i, &load, forced, need)
                };
                match found {
                    Ok(Some(f)) => {
                        let cur = &parts[i];
                        if !ok
                            || f.part.minutes > cur.minutes
                            || (f.part.minutes == cur.minutes && f.part.key < cur.key)
                        {
                            changes += 1;
                            parts[i] = f.part;
                        }
                    }
                    Ok(None) if !ok => {
                        // not even its min-SoC minutes keep the rules
                        parts[i] = self.part(i, self.fixed_runs[i].clone());
                        broken[i] = Some(Broken::MinSoc);
                        changes += 1;
                    }
                    Ok(None) => {}
                    Err(_) if self.spent() => {
                        if self.fall_back(i, &load, ok, &mut parts[i], &mut broken[i]) {
                            changes += 1;
                        }
                    }
                    Err(_) => {
                        if !ok {
                            parts[i] = self.part(i, self.fixed_runs[i].clone());
                            if !self.keeps(i, &parts[i]) {
                                broken[i] = Some(Broken::TooLarge);
                            }
                            changes += 1;
                        }
                    }
                }
                // the budget ran out in this vehicle's search: what it
                // found (or its plan so far) is topped up without one
                if self.spent() && parts[i].minutes < need && broken[i].is_none() {
                    let ok = self.keeps(i, &parts[i]);
                    if self.fall_back(i, &load, ok, &mut parts[i], &mut broken[i]) {
                        changes += 1;
                    }
                }
                seen[i] = changes;
                add(&mut load, &parts[i].runs, w);
            }
            if self.spent() || round > 0 && changes == before {
                break;
            }
        }
        Joint { parts, broken }
    }

    /// Whether the work budget is spent: no exact solve runs any more.
    pub fn spent(&self) -> bool {
        self.planner.out_of_work()
    }

    /// Replaces vehicle `i`'s part by [`Enforcer::fallback`] built on it
    /// (when it keeps its rules, `ok`) or on its min-SoC minutes (when it
    /// does not): only when that part breaks the rules or the fallback
    /// gives more minutes. Whether the part changed.
    fn fall_back(
        &self,
        i: usize,
        load: &[i64],
        ok: bool,
        part: &mut Part,
        broken: &mut Option<Broken>,
    ) -> bool {
        let base = if ok {
            part.runs.clone()
        } else {
            self.fixed_runs[i].clone()
        };
        let f = self.fallback(i, load, base, broken);
        let better = !ok || f.minutes > part.minutes;
        if better {
            *part = f;
        }
        better
    }

    /// Vehicle `i`'s plan without the exact solver, for when the work
    /// budget is spent: `base` (runs that keep its rules, or its min-SoC
    /// runs) and, one at a time while it is short, the window where
    /// `load` leaves room with the most minutes (up to what it still
    /// needs), then the cheapest, whose union with the runs so far keeps
    /// its rules (of the [`FALLBACK_TRIES`] best). When `base` breaks the
    /// rules nothing is added and `broken` says so. Each window costs a
    /// pass over the horizon; at most [`FALLBACK_WINDOWS`] are added.
    fn fallback(
        &self,
        i: usize,
        load: &[i64],
        base: Vec<(u32, u32)>,
        broken: &mut Option<Broken>,
    ) -> Part {
        let c = &self.cars[i];
        let n = c.n as usize;
        let mut taken = vec![false; n];
        for &(a, b) in &base {
            taken[a as usize..b as usize].fill(true);
        }
        let mut have: u32 = base.iter().map(|r| r.1 - r.0).sum();
        let mut runs = base;
        let cost = |x: usize| i128::from(self.price[x]);
        for _ in 0..FALLBACK_WINDOWS {
            let want = c.need.saturating_sub(have) as usize;
            if want == 0 || !c.rules.kept_by(&runs, c.n) {
                break;
            }
            let free = |t: usize| !taken[t] && load[t] + c.watts <= self.lim[t];
            // per stretch of free minutes its cheapest window of up to
            // `want` minutes: (minutes, key, start)
            let mut windows: Vec<(usize, i128, usize)> = Vec::new();
            let mut t = 0;
            while t < n {
                if !free(t) {
                    t += 1;
                    continue;
                }
                let a = t;
                while t < n && free(t) {
                    t += 1;
                }
                let len = want.min(t - a);
                let mut sum: i128 = (a..a + len).map(cost).sum();
                let mut best = (sum, a);
                for s in a + 1..=t - len {
                    sum += cost(s + len - 1) - cost(s - 1);
                    // ties: the preferred end of the horizon
                    if sum < best.0 || sum == best.0 && self.later {
                        best = (sum, s);
                    }
                }
                windows.push((len, best.0, best.1));
            }
            // most minutes, then cheapest, then the preferred end (a
            // total order: no two windows start at the same minute); only
            // the first few are tried
            let rank = |&(len, key, a): &(usize, i128, usize)| {
                let pos = if self.later { n - a } else { a };
                (std::cmp::Reverse(len), key, pos)
            };
            if windows.len() > FALLBACK_TRIES {
                windows.select_nth_unstable_by_key(FALLBACK_TRIES, rank);
                windows.truncate(FALLBACK_TRIES);
            }
            windows.sort_by_key(rank);
            let added = windows.into_iter().find_map(|(len, _, a)| {
                let mut more = runs.clone();
                more.push((a as u32, (a + len) as u32));
                let more = super::merge(&mut more);
                c.rules.kept_by(&more, c.n).then_some((more, a, len))
            });
            let Some((more, a, len)) = added else {
                break;
            };
            runs = more;
            taken[a..a + len].fill(true);
            have += len as u32;
        }
        let part = self.part(i, runs);
        if !self.keeps(i, &part) {
            *broken = Some(Broken::MinSoc);
        }
        part
    }

    /// Vehicle `i`'s cheapest plan of the most minutes in `[from, need]`
    /// that keeps its rules where `load` leaves room: `need` if it can,
    /// else found by halving (fewer minutes are easier to place).
    fn best(
        &mut self,
        i: usize,
        load: &[i64],
        from: u32,
        need: u32,
    ) -> Result<Option<Found>, PlanError> {
        if let Some(f) = self.solve(i, load, need, &[])? {
            return Ok(Some(f));
        }
        let (mut lo, mut hi, mut got) = (from, need.saturating_sub(1), None);
        while lo <= hi && hi < need {
            let mid = lo + (hi - lo).div_ceil(2);
            let found = match self.solve(i, load, mid, &[]) {
                Ok(found) => found,
                // out of work: the most minutes found so far still keep
                // the rules and fit
                Err(e) => return got.map_or(Err(e), |f| Ok(Some(f))),
            };
            match found {
                Some(f) => {
                    got = Some(f);
                    lo = mid + 1;
                }
                None if mid == 0 => break,
                None => hi = mid - 1,
            }
        }
        Ok(got)
    }

    /// Vehicle `i`'s cheapest plan of exactly `l` minutes that keeps its
    /// rules, charges all its min-SoC minutes and fits where `load`
    /// leaves room, if the exact solver finds one.
    ///
    /// `known` is a plan that keeps the rules and fits (or empty): it
    /// bounds the search when it has `l` minutes.
    fn solve(
        &mut self,
        i: usize,
        load: &[i64],
        l: u32,
        known: &[(u32, u32)],
    ) -> Result<Option<Found>, PlanError> {
        let c = &self.cars[i];
        let n = c.n as usize;
        let fixed = &self.fixed[i];
        let forced: u32 = fixed[..n].iter().filter(|&&f| f).count() as u32;
        if l < forced || n == 0 {
            return Ok(None);
        }
        if l == 0 {
            return Ok(Some(Found {
                part: Part::default(),
                exact: true,
            }));
        }
        // prices shifted to start at 0 (every plan has l minutes, so the
        // order of plans is the same), compressed only if the penalties
        // would not fit
        let lo = self.price[..n].iter().copied().min().unwrap_or(0);
        let hi = self.price[..n].iter().copied().max().unwrap_or(0);
        let (nn, ll) = (n as i128, i128::from(l));
        let mut shift = 0u32;
        let (range, pen) = loop {
            let range = i128::from(hi - lo) >> shift;
            // any plan's shifted cost lies in [0, l·range]: one minute at
            // `pen` outweighs any difference of cost
            let pen = ll * range + 1;
            if nn * (range + pen) < KEY_ROOM {
                break (range, pen);
            }
            shift += 1;
        };
        let class = |t: usize| -> i64 {
            if fixed[t] {
                -(pen as i64)
            } else if load[t] + c.watts > self.lim[t] {
                (range + pen) as i64
            } else {
                (self.price[t] - lo) >> shift
            }
        };
        self.segs.clear();
        for t in 0..n {
            let v = class(t);
            match self.segs.last_mut() {
                Some(s) if s.c == v => s.len += 1,
                _ => self.segs.push(Seg {
                    start: t as u32,
                    len: 1,
                    c: v,
                    forced: false,
                }),
            }
        }
        let Some(runs) = self
            .planner
            .choose(&self.segs, c.n, l, c.rules, self.later, known)?
        else {
            return Ok(None);
        };
        let runs = runs.to_vec();
        // taken where it does not fit, or a min-SoC minute left out: no
        // plan keeps the rules here
        let mut taken = 0u32;
        for &(a, b) in &runs {
            for t in a as usize..b as usize {
                if !fixed[t] && load[t] + c.watts > self.lim[t] {
                    return Ok(None);
                }
                taken += u32::from(fixed[t]);
            }
        }
        if taken < forced || !c.rules.kept_by(&runs, c.n) {
            return Ok(None);
        }
        Ok(Some(Found {
            part: self.part(i, runs),
            exact: shift == 0,
        }))
    }

    /// A lower bound of the cost beyond the min-SoC schedule of any plan
    /// in which every vehicle keeps its rules and charges `minutes[i]`:
    /// each vehicle alone, with only the others' min-SoC minutes and the
    /// reserved power in its way. `None` when a solve was not exact.
    /// `plan` is the joint plan (each part fits alone too): a bound for
    /// each search.
    pub fn alone_bound(&mut self, plan: &[Part]) -> Option<(i128, Vec<Part>)> {
        let forced = self.load(&self.forced_only());
        let (mut total, mut parts) = (0i128, Vec::with_capacity(self.cars.len()));
        for (i, part) in plan.iter().enumerate() {
            let mut load = forced.clone();
            sub(&mut load, &self.fixed_runs[i], self.cars[i].watts);
            let f = self.solve(i, &load, part.minutes, &part.runs).ok()??;
            if !f.exact {
                return None;
            }
            total += f.part.key;
            parts.push(f.part);
        }
        Some((total, parts))
    }
}

fn add(load: &mut [i64], runs: &[(u32, u32)], w: i64) {
    for &(a, b) in runs {
        for x in &mut load[a as usize..b as usize] {
            *x += w;
        }
    }
}

fn sub(load: &mut [i64], runs: &[(u32, u32)], w: i64) {
    add(load, runs, -w);
}
