//! The exact solver: dynamic programming over price runs.
//!
//! State after a run: blocks started so far (when limited), whether the
//! last minute charged, and `j`, the minutes charged so far. A run is
//! skipped or taken whole; because its price is constant, an optimal plan
//! needs at most one block edge inside a run anywhere (moving two such
//! edges against each other changes the key linearly, so one of them can
//! go to a run boundary). That one partial run is a flag in the state.
//! Only `j` values that can still add up to exactly `l` are visited: run
//! lengths are multiples of some `g` (15 for quarter-hour prices), so only
//! a few residues of `j` modulo `g` are live.
//!
//! Work is kept to the states that matter: each layer keeps lists of its
//! reached states; a waiting (not charging) state is stored once with the
//! layer it was entered at instead of being copied through every run; a
//! state is dropped when its cost plus its remaining minutes at the
//! cheapest price still ahead exceeds the best single block (a plan that is
//! always allowed), which never drops an optimal plan.
//!
//! With `min_pause_minutes` a stop before the plan is done waits: the
//! state arrives at the first layer a pause later (held back until that
//! layer comes). A pause pins the edges it separates to one another, so
//! the runs are first cut a pause from every run edge (see [`refine`]);
//! then, again, one edge is free, and a last block of one minute that a
//! latest end keeps from vanishing is pinned a pause after that edge (a
//! [`Tail`], kept aside). Cut this way there are a few times as many
//! runs; cut into minutes, as before, there were 15 times as many layers.
//!
//! With `min_block_minutes` the runs are cut into single minutes, blocks
//! start with a jump of `min_block` minutes, a last block may be shorter,
//! and stops wait for the pause as above; no partial runs are needed
//! there. A block of exactly `min_block` minutes chains its edges, so
//! that constraint needs minutes rather than runs.
//!
//! With the vehicle charging now, the first layer also holds a charging
//! state with no block counted: the running session. The latest end of the
//! last block (`finish_by_departure_minutes`) is a run boundary (the runs
//! are split there) and a condition on the stop that completes the plan.

mod layout;
mod repair;
mod step;
#[cfg(test)]
mod tests;

use self::layout::*;
use crate::error::PlanError;
use crate::problem::{push_interval, run_key, Problem, Seg};

/// Reusable tables of the exact solver.
#[derive(Debug, Default)]
pub(crate) struct Dp {
    vals: Vec<i128>,
    back: Vec<u64>,
    offv: Vec<i128>,
    offo: Vec<u32>,
    offlist: Vec<Vec<u32>>,
    base: Vec<usize>,
    lo: Vec<u32>,
    hi: Vec<u32>,
    m0: Vec<u64>,
    m1: Vec<u64>,
    suf: Vec<u64>,
    prefix: Vec<i128>,
    /// See [`Dp::lower_bounds`]; i64 holds any cost of up to a week of
    /// minutes at the largest price (below 2^57), and halves the table.
    lb: Vec<i64>,
    cmin: Vec<i128>,
    tight: bool,
    lbi: Vec<u32>,
    active: Vec<Vec<u32>>,
    cost_prefix: Vec<i128>,
    ub: i128,
    units: Vec<Seg>,
    cuts: Vec<u32>,
    reach: Vec<u32>,
    work: repair::Work,
    steps: Vec<(u32, u32)>,
    parts: Vec<Part>,
    /// Every layer's bounds and offsets, computed once per solve (the
    /// passes of one solve share them).
    tgts: Vec<Tgt>,
    arrivals: Vec<Vec<Arrival>>,
    /// The best plan of the pass ending with a pinned last minute.
    tail: Option<Tail>,
    /// The cost of an allowed plan the caller knows (the site planner's
    /// current plan of a vehicle): it bounds the search like a repaired
    /// hint, and a tight one prunes most states.
    pub(crate) known: Option<i128>,
    /// Table cells the solver may still fill (see [`Dp::charge`]);
    /// `None`: no limit (a single plan, bounded by [`MAX_TABLE`] alone).
    pub(crate) work_left: Option<u64>,
    /// Set when a pass was refused because its table would overrun
    /// `work_left`: every later solve is refused too.
    pub(crate) out_of_work: bool,
    /// Table cells paid for by [`Dp::charge`] since the last
    /// [`crate::Planner::set_work`], whether or not a limit is set: the
    /// work a site plan reports.
    pub(crate) work_done: u64,
    /// Solve minute by minute whatever the constraints: the reference
    /// the run-level programme is tested against.
    #[cfg(test)]
    pub(crate) by_minute: bool,
}

impl Dp {
    /// Fills `out` with an optimal plan; returns Ok(false) when no plan
    /// satisfies the constraints. `hint` is an optimal plan of a relaxed
    /// problem (or empty): an allowed plan built from it bounds the search.
    pub fn solve(
        &mut self,
        p: &Problem,
        hint: &[(u32, u32)],
        out: &mut Vec<(u32, u32)>,
    ) -> Result<bool, PlanError> {
        out.clear();
        let unit = p.min_block > 1 || self.minutes_only();
        let mut units = std::mem::take(&mut self.units);
        self.lbi.clear();
        let segs: &[Seg] = if !unit && p.pause > 1 {
            refine(p, &mut units, &mut self.cuts, &mut self.lbi);
            &units
        } else if unit {
            units.clear();
            for (k, s) in p.segs.iter().enumerate() {
                for i in 0..s.len {
                    self.lbi.push(k as u32);
                    units.push(Seg {
                        start: s.start + i,
                        len: 1,
                        c: s.c,
                        forced: s.forced,
                    });
                }
            }
            &units
        } else {
            self.lbi.extend(0..p.segs.len() as u32);
            p.segs
        };
        let repaired = repair::repair(p, hint, &mut self.work);
        let repaired = match (repaired, self.known) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let r = self.run(p, segs, unit, repaired, out);
        self.units = units;
        r
    }

    #[cfg(test)]
    fn minutes_only(&self) -> bool {
        self.by_minute
    }

    #[cfg(not(test))]
    fn minutes_only(&self) -> bool {
        false
    }

    fn run(
        &mut self,
        p: &Problem,
        segs: &[Seg],
        unit: bool,
        repaired: Option<i128>,
        out: &mut Vec<(u32, u32)>,
    ) -> Result<bool, PlanError> {
        let l = p.l;
        let ns = segs.len();
        let m = p.min_block.max(1);
        let ks = match p.max_blocks {
            Some(k) => k as usize + 1,
            None => 1,
        };
        let nf = if unit { 1 } else { 2 };
        // residue modulus: the gcd of the runs that do not touch the
        // horizon's ends or the forced part
        let mut g = 0;
        if !unit {
            // the problem's own runs: cuts for the pause only add residues
            let runs = p.segs;
            for (i, s) in runs.iter().enumerate() {
                let edge = i == 0
                    || i + 1 == runs.len()
                    || s.forced
                    || runs.get(i + 1).is_some_and(|n| n.forced != s.forced)
                    // runs cut for the latest end of the last block
                    || (p.finish > 0 && s.start + s.len + 1 >= p.finish);
                if !edge {
                    g = gcd(g, s.len);
                }
            }
        }
        let g = if g == 0 { 1 } else { gcd(g, 60) };
        let mut shape = Shape {
            layers: ns + 1,
            ks,
            states: nf * ks * 2,
            ring: m as usize + 1,
            g,
            l,
            done: if p.max_blocks.is_some() {
                (ks - 1) * 2
            } else {
                usize::MAX
            },
            e: (l / g) as usize + 1,
            width: l as usize + 1,
            foff: [0, 0],
            slot_size: 0,
        };

        // residue sets and bands per layer
        self.m0.clear();
        self.m1.clear();
        self.suf.clear();
        self.lo.clear();
        self.hi.clear();
        self.suf.resize(shape.layers, 0);
        self.suf[ns] = 1;
        for s in (0..ns).rev() {
            self.suf[s] = self.suf[s + 1] | rot(self.suf[s + 1], segs[s].len, g);
        }
        let mut r0 = 1u64;
        let mut partial_before = false;
        for s in 0..shape.layers {
            let seg = segs.get(s);
            let a = seg.map_or(p.n, |x| x.start);
            self.lo.push(l.saturating_sub(p.n - a));
            self.hi.push(l.min(a));
            self.m0.push(r0);
            let mut c = 0u64;
            let mut x = self.suf[s];
            while x != 0 {
                let b = x.trailing_zeros();
                x &= x - 1;
                c |= 1 << ((l + g - b % g) % g);
            }
            self.m1.push(if partial_before && nf == 2 { c } else { 0 });
            if let Some(x) = seg {
                r0 |= rot(r0, x.len, g);
                partial_before |= !x.forced && x.len >= 2;
            }
        }

        let cmax = |v: &[u64]| v.iter().map(|m| m.count_ones() as usize).max().unwrap_or(0);
        let region = |c: usize| shape.ks * 2 * c * shape.e;
        shape.foff = [0, region(cmax(&self.m0))];
        shape.slot_size = shape.foff[1] + if nf == 2 { region(cmax(&self.m1)) } else { 0 };

        // back pointer table: live entries of every layer
        self.base.clear();
        let mut total = 0usize;
        for s in 0..shape.layers {
            for f in 0..2 {
                self.base.push(total);
                if f < nf {
                    let cnt = self.mask(s, f).count_ones() as usize;
                    total += shape.ks * 2 * cnt * shape.e;
                }
            }
        }
        let vals_len = shape.ring * shape.slot_size;
        if total > MAX_TABLE || vals_len > MAX_TABLE {
            return Err(PlanError::TooLarge(format!(
                "{} minutes to place in {} runs with min_block_minutes",
                l, ns
            )));
        }
        // what one pass fills: its value ring, its back pointers and
        // (with a pause or a latest end) the completion bounds; the first
        // pass is paid for before any table grows
        let tight = p.pause > 1 || p.finish > 0;
        let lb_len = if tight {
            p.segs.len() * (l as usize + 1)
        } else {
            0
        };
        let cells = (vals_len + total + lb_len) as u64;
        self.charge(cells)?;
        let mut first = true;
        if self.back.len() < total {
            self.back.resize(total, 0);
        }
        if shape.width * 2 * ks > MAX_TABLE {
            return Err(PlanError::TooLarge(format!("{l} minutes to place")));
        }
        if self.vals.len() < vals_len {
            self.vals.resize(vals_len, INF);
        }
        if unit {
            self.prefix.clear();
            self.prefix.push(0);
            let mut acc = 0i128;
            for s in segs {
                acc += run_key(s.c, p.later, p.n, s.start, 1);
                self.prefix.push(acc);
            }
        }

        self.cost_prefix.clear();
        self.cost_prefix.push(0);
        let mut acc = 0i128;
        for s in segs {
            acc += i128::from(s.c) * i128::from(s.len);
            self.cost_prefix.push(acc);
        }
        // where the pause after a stop at each layer's start ends
        self.reach.clear();
        if p.pause > 1 {
            for s in segs {
                self.reach.push(layer_at(segs, s.start + p.pause) as u32);
            }
        }
        self.bounds(p, segs);
        self.lower_bounds(p);
        let mut tgts = std::mem::take(&mut self.tgts);
        tgts.clear();
        tgts.extend((0..shape.layers).map(|layer| self.target(&shape, layer)));
        self.tgts = tgts;
        // an allowed plan's cost: a tighter bound drops more states
        if let Some(c) = repaired {
            self.ub = self.ub.min(c);
        }
        // with a pause or a latest end and no plan repaired from the
        // relaxed optimum, the only known plan is the best single block,
        // often far above the optimum: try bounds from the cheapest
        // conceivable cost up; a plan found within the bound tried is
        // optimal (no state of a plan that cheap was dropped). A repaired
        // plan is close: on a year of 48-hour quarter-hour curves the
        // optimum lay at 30-100 % of the way from that floor to it, so the
        // passes below it nearly always failed and cost a third of the time
        let known = self.ub;
        let floor = if self.tight {
            i128::from(self.lb[l as usize])
        } else {
            0
        };
        let mut step = if self.tight && repaired.is_none() {
            ((known - floor) / 16).max(1)
        } else {
            i128::MAX
        };
        loop {
            let tried = floor.saturating_add(step).min(known);
            self.ub = tried;
            if !first {
                self.charge(cells)?;
            }
            first = false;
            let (mut best, best_state) = self.attempt(p, segs, &shape, unit, m);
            let tail = self.tail.filter(|t| t.v < best);
            if let Some(t) = tail {
                best = t.v;
            }
            if tried == known || (best != INF && best >> 64 <= tried) {
                if best == INF {
                    return Ok(false);
                }
                self.backtrack(segs, &shape, best_state, tail, m, out);
                return Ok(true);
            }
            step = step.saturating_mul(4);
        }
    }

    /// Takes `cells` from the work left before a pass fills that many
    /// cells, or refuses the pass (and every later one) when they would
    /// overrun it: a budget counted in cells, not time, so the same
    /// request always gets the same answer, and no pass starts that the
    /// budget cannot pay for in full.
    fn charge(&mut self, cells: u64) -> Result<(), PlanError> {
        if let Some(left) = self.work_left {
            if self.out_of_work || cells > left {
                self.out_of_work = true;
                return Err(PlanError::TooLarge(
                    "the planning work budget is spent".to_string(),
                ));
            }
            self.work_left = Some(left - cells);
        }
        self.work_done = self.work_done.saturating_add(cells);
        Ok(())
    }

    /// One pass of the programme with the pruning bound `self.ub`: the
    /// best final value and its state, INF when none is reached.
    fn attempt(
        &mut self,
        p: &Problem,
        segs: &[Seg],
        shape: &Shape,
        unit: bool,
        m: u32,
    ) -> (i128, (usize, usize)) {
        let (l, g, ns, ks, nf) = (p.l, shape.g, segs.len(), shape.ks, shape.flags());
        let vals_len = shape.ring * shape.slot_size;
        self.vals[..vals_len].fill(INF);
        let lists = shape.ring * shape.states;
        if self.active.len() < lists {
            self.active.resize_with(lists, Vec::new);
        }
        for a in &mut self.active[..lists] {
            a.clear();
        }
        let offs = nf * ks;
        self.offv.clear();
        self.offv.resize(offs * shape.width, INF);
        self.offo.clear();
        self.offo.resize(offs * shape.width, 0);
        if self.offlist.len() < offs {
            self.offlist.resize_with(offs, Vec::new);
        }
        for a in &mut self.offlist[..offs] {
            a.clear();
        }
        // waiting states by the layer where their pause ends
        let waits = p.pause > 1;
        self.tail = None;
        if self.arrivals.len() < ns + 1 {
            self.arrivals.resize_with(ns + 1, Vec::new);
        }
        for a in &mut self.arrivals[..=ns] {
            a.clear();
        }
        if p.running && waits {
            // a session stopped at minute 0 may start again after a pause,
            // unless minute 0 is forced
            let at = self.reach[0] as usize;
            if !unit && l == 1 && !segs[0].forced {
                // one minute, a pause after the stop
                if let Some(v) = tail_key(p, segs, p.pause) {
                    self.tail = Some(Tail {
                        v,
                        state: usize::MAX,
                        layer: 0,
                        j: 0,
                        run: 0,
                        t: 0,
                        x: p.pause,
                    });
                }
            }
            if at < ns && !segs[0].forced {
                self.arrivals[at].push(Arrival {
                    f: 0,
                    k: 0,
                    j: 0,
                    v: 0,
                    code: from_off(encode(0, PAUSE, at as u32), 0),
                });
            }
        } else {
            self.offv[0] = 0;
            self.offlist[0].push(pack(0, 0));
        }
        if p.running {
            // the session charging now: a block without a start
            let t = &self.tgts[0];
            let st = shape.state(0, 0, 1);
            self.vals[t.vbase[0] + t.offset(shape, 0, 1, 0, 0)] = 0;
            self.active[t.slot * shape.states + st].push(pack(0, 0));
        }

        for s in 0..ns {
            self.step(p, segs, shape, s, unit, m);
        }

        // best final state
        let mut best = INF;
        let mut best_state = (usize::MAX, 0);
        let last = &self.tgts[ns];
        for f in 0..shape.flags() {
            if l < last.lo || l > last.hi || last.mask[f] & (1 << (l % g)) == 0 {
                continue;
            }
            for k in 0..shape.ks {
                for on in 0..2 {
                    let st = shape.state(f, k, on);
                    let (v, layer) = if on == 0 {
                        let idx = (f * shape.ks + k) * shape.width + l as usize;
                        (self.offv[idx], self.offo[idx] as usize)
                    } else {
                        let off = last.offset(shape, f, k * 2 + on, l % g, l / g);
                        (self.vals[last.vbase[f] + off], ns)
                    };
                    if v < best {
                        best = v;
                        best_state = (st, layer);
                    }
                }
            }
        }
        (best, best_state)
    }

    fn mask(&self, layer: usize, f: usize) -> u64 {
        if f == 0 {
            self.m0[layer]
        } else {
            self.m1[layer]
        }
    }

    /// Where a layer's entries live, computed once per step.
    fn target(&self, sh: &Shape, layer: usize) -> Tgt {
        let mask = [self.m0[layer], self.m1[layer]];
        let slot = (layer % sh.ring) * sh.slot_size;
        let mut rank = [[0u8; 64]; 2];
        for (ranks, m) in rank.iter_mut().zip(mask) {
            let mut n = 0;
            for (r, slot) in ranks.iter_mut().enumerate().take(sh.g as usize) {
                *slot = n;
                n += (m >> r & 1) as u8;
            }
        }
        Tgt {
            rank,
            lo: self.lo[layer],
            hi: self.hi[layer],
            mask,
            vbase: [slot + sh.foff[0], slot + sh.foff[1]],
            base: [self.base[layer * 2], self.base[layer * 2 + 1]],
            cnt: [
                rank[0][sh.g as usize - 1] as usize + (mask[0] >> (sh.g - 1) & 1) as usize,
                rank[1][sh.g as usize - 1] as usize + (mask[1] >> (sh.g - 1) & 1) as usize,
            ],
            slot: layer % sh.ring,
            layer,
        }
    }

    /// The bound for pruning: `ub`, the cost of the best single block the
    /// constraints allow (none: no bound). A state whose cost plus the
    /// cheapest completion ([`Dp::lower_bounds`]) exceeds the cost of an
    /// allowed plan cannot lead to an optimal plan.
    fn bounds(&mut self, p: &Problem, segs: &[Seg]) {
        // cost of minutes [0, x)
        let cost_to = |x: u32| -> i128 {
            let i = segs.partition_point(|s| s.start + s.len <= x);
            let before: i128 = self.prefix_cost(i);
            match segs.get(i) {
                Some(s) if s.start < x => before + i128::from(s.c) * i128::from(x - s.start),
                _ => before,
            }
        };
        let l = p.l;
        // single blocks [a, a + l) the constraints allow: from minute 0
        // (with a forced part, only there), ending at `finish` or later,
        // and a restart after a stopped session only after the pause
        let forced = segs.first().is_some_and(|s| s.forced);
        let allowed = |a: u32| {
            a + l <= p.n
                && a + l >= p.finish
                && (a == 0 || (!forced && (!p.running || p.pause <= 1 || a >= p.pause)))
        };
        // the cost is linear in `a` between run edges: its minimum over
        // the allowed starts is at an edge or an end of the allowed range
        let mut ub = i128::MAX / 4;
        let ends = [
            0,
            p.pause,
            p.finish.saturating_sub(l),
            p.n.saturating_sub(l),
        ];
        let edges = segs
            .iter()
            .flat_map(|s| [s.start, (s.start + s.len).saturating_sub(l)]);
        for a in ends.into_iter().chain(edges) {
            if allowed(a) {
                ub = ub.min(cost_to(a + l) - cost_to(a));
            }
        }
        self.ub = ub;
    }

    /// `lb[i * (l + 1) + r]`: the cost of the `r` cheapest minutes from
    /// price run `i` of the problem on, whatever the constraints; a lower
    /// bound of any completion from a layer inside that run (`lbi` maps
    /// layers to runs). Unreachable counts get a huge value.
    ///
    /// Without a pause or a latest end (`tight` false) the weaker
    /// `cmin[i]`, the cheapest price from run `i` on, times the minutes
    /// left, is enough and much cheaper to set up.
    fn lower_bounds(&mut self, p: &Problem) {
        let w = p.l as usize + 1;
        let runs = p.segs;
        self.tight = p.pause > 1 || p.finish > 0;
        if !self.tight {
            self.cmin.clear();
            self.cmin.resize(runs.len() + 1, i128::MAX / 4);
            for i in (0..runs.len()).rev() {
                self.cmin[i] = self.cmin[i + 1].min(i128::from(runs[i].c));
            }
            return;
        }
        const NONE: i64 = i64::MAX / 4;
        self.lb.clear();
        self.lb.resize(runs.len() * w, NONE);
        // the cheapest minutes from run i on are those from run i + 1 on
        // with run i's minutes merged in at their price: the row's steps
        // rise, so they go in after the steps cheaper than the run
        for (i, run) in runs.iter().enumerate().rev() {
            let (row, after) = self.lb[i * w..].split_at_mut(w);
            let c = run.c;
            let len = run.len as usize;
            if after.is_empty() {
                row[0] = 0;
                for (r, x) in row.iter_mut().enumerate().skip(1).take(len) {
                    *x = c * r as i64;
                }
                continue;
            }
            let next = &after[..w];
            // minutes available after run i, and how many cost less than c
            let avail = next.partition_point(|&x| x < NONE) - 1;
            let (mut lo, mut hi) = (0, avail);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if next[mid + 1] - next[mid] < c {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let pos = lo;
            row[..=pos].copy_from_slice(&next[..=pos]);
            let base = next[pos];
            for t in 1..=len.min(w - 1 - pos) {
                row[pos + t] = base + c * t as i64;
            }
            let top = (avail + len).min(w - 1);
            for r in pos + len + 1..=top {
                row[r] = next[r - len] + c * len as i64;
            }
        }
    }

    fn prefix_cost(&self, i: usize) -> i128 {
        self.cost_prefix[i]
    }

    fn backtrack(
        &mut self,
        segs: &[Seg],
        sh: &Shape,
        (mut state, mut layer): (usize, usize),
        tail: Option<Tail>,
        m: u32,
        out: &mut Vec<(u32, u32)>,
    ) {
        self.steps.clear();
        let mut j = sh.l;
        if let Some(t) = tail {
            self.steps.push((t.x, t.x + 1));
            if t.t > 0 {
                let a = segs[t.run].start;
                self.steps.push((a, a + t.t));
            }
            (state, layer, j) = (t.state, t.layer, t.j);
            if state == usize::MAX {
                layer = 0;
            }
        }
        while layer > 0 {
            let (prev, kind, t, origin, back) = decode({
                let t = &self.tgts[layer];
                let (f, local) = (state / (sh.ks * 2), state % (sh.ks * 2));
                self.back[t.base[f] + t.offset(sh, f, local, j % sh.g, j / sh.g)]
            });
            let (from, taken, a, b) = match kind {
                NONE => (layer - 1, 0, 0, 0),
                FULL => {
                    let s = segs[layer - 1];
                    (layer - 1, s.len, s.start, s.start + s.len)
                }
                PREFIX => {
                    let s = segs[layer - 1];
                    (layer - 1, t, s.start, s.start + t)
                }
                SUFFIX => {
                    let s = segs[layer - 1];
                    let e = s.start + s.len;
                    (layer - 1, t, e - t, e)
                }
                JUMP => {
                    let s = segs[layer - m as usize];
                    (layer - m as usize, m, s.start, s.start + m)
                }
                PAUSE => (layer - t as usize, 0, 0, 0),
                PREFIX_WAIT => {
                    let s = segs[layer - back];
                    (layer - back, t, s.start, s.start + t)
                }
                _ => {
                    debug_assert_eq!(kind, FINAL);
                    let s = segs[layer - t as usize];
                    (layer - t as usize, t, s.start, s.start + t)
                }
            };
            if taken > 0 {
                self.steps.push((a, b));
            }
            j -= taken;
            // an off state was entered at `origin` and waited since
            layer = if prev & 1 == 0 { origin } else { from };
            state = prev;
        }
        for &(a, b) in self.steps.iter().rev() {
            push_interval(out, a, b);
        }
    }
}

/// Cuts the runs where an optimal plan may have a block edge that no run
/// edge holds: a pause of exactly `pause` from a run edge, so every run
/// edge plus and minus `pause`. `lbi` maps the pieces to their runs.
///
/// Why this is enough (with blocks of any length): move an edge that lies
/// inside a run, keeping the minutes, and the key changes linearly (or
/// concavely, with the lateness) until it reaches a run edge, a block
/// vanishes or a pause shrinks to `pause`. Two such edges move against
/// each other, so at most one is left. An end and the next start a
/// tight pause apart move together without changing the minutes, and one
/// direction always lowers the key (the lateness alone differs by
/// `pause` per minute), so such a pair ends with one edge on a run edge
/// and the other `pause` from it. The one free edge is the partial run.
fn refine(p: &Problem, units: &mut Vec<Seg>, cuts: &mut Vec<u32>, lbi: &mut Vec<u32>) {
    cuts.clear();
    for b in p.segs.iter().map(|s| s.start).chain([p.n]) {
        if b + p.pause < p.n {
            cuts.push(b + p.pause);
        }
        if b > p.pause {
            cuts.push(b - p.pause);
        }
        // a last block of one minute that a latest end keeps from
        // vanishing, a pause after a stop at a run edge or ending at one
        if p.finish > 0 {
            if b + p.pause + 1 >= p.finish && b + p.pause + 1 < p.n {
                cuts.push(b + p.pause + 1);
            }
            if b >= p.finish && b > p.pause + 1 {
                cuts.push(b - p.pause - 1);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    units.clear();
    let mut c = 0;
    for (k, s) in p.segs.iter().enumerate() {
        let end = s.start + s.len;
        while c < cuts.len() && cuts[c] <= s.start {
            c += 1;
        }
        let mut at = s.start;
        while c < cuts.len() && cuts[c] < end {
            units.push(Seg {
                start: at,
                len: cuts[c] - at,
                ..*s
            });
            lbi.push(k as u32);
            at = cuts[c];
            c += 1;
        }
        units.push(Seg {
            start: at,
            len: end - at,
            ..*s
        });
        lbi.push(k as u32);
    }
}

/// The first run starting at `x` or later (`segs.len()` if none).
pub(super) fn layer_at(segs: &[Seg], x: u32) -> usize {
    segs.partition_point(|s| s.start < x)
}

/// The key of a last block of minute `x` alone, if it may be the last
/// block: a latest end binds (else the block may vanish and is never
/// pinned) and it ends by then and within the horizon.
pub(super) fn tail_key(p: &Problem, segs: &[Seg], x: u32) -> Option<i128> {
    if p.finish == 0 || x + 1 < p.finish || x + 1 > p.n {
        return None;
    }
    let run = segs[segs.partition_point(|s| s.start + s.len <= x)];
    Some(run_key(run.c, p.later, p.n, x, 1) + crate::problem::BLOCK)
}
