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
//! With `min_block_minutes` the runs are cut into single minutes, blocks
//! start with a jump of `min_block` minutes, and a last block may be
//! shorter; no partial runs are needed there.

use crate::error::PlanError;
use crate::problem::{push_interval, run_key, Problem, Seg, BLOCK};

/// Value of an unreached state.
const INF: i128 = i128::MAX;

/// Largest table of back pointers the solver builds (128 MiB of u32).
const MAX_TABLE: usize = 1 << 25;

const NONE: u32 = 0;
const FULL: u32 = 1;
const PREFIX: u32 = 2;
const SUFFIX: u32 = 3;
const JUMP: u32 = 4;
const FINAL: u32 = 5;

/// A back pointer: the previous state, the transition and its length;
/// when the previous state is off, the layer it was entered at.
fn encode(state: usize, kind: u32, t: u32) -> u64 {
    u64::from((state as u32) | (kind << 7) | (t << 10))
}

fn from_off(code: u64, origin: u32) -> u64 {
    code | (u64::from(origin) << 32)
}

fn decode(code: u64) -> (usize, u32, u32, usize) {
    let c = code as u32;
    (
        (c & 0x7f) as usize,
        (c >> 7) & 7,
        c >> 10,
        (code >> 32) as usize,
    )
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Rotates a residue set modulo `g` by `d`.
fn rot(mask: u64, d: u32, g: u32) -> u64 {
    let full = if g == 64 { u64::MAX } else { (1u64 << g) - 1 };
    let d = d % g;
    if d == 0 {
        return mask;
    }
    ((mask << d) | (mask >> (g - d))) & full
}

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
    cmin: Vec<i128>,
    active: Vec<Vec<u32>>,
    cost_prefix: Vec<i128>,
    ub: i128,
    units: Vec<Seg>,
    steps: Vec<(u32, u32)>,
    parts: Vec<Part>,
}

/// Layout of the state space of one solve.
struct Shape {
    /// Layers: runs + 1.
    layers: usize,
    /// Block-count values per flag (K + 1, or 1 without a limit).
    ks: usize,
    /// States per layer.
    states: usize,
    /// Ring of value layers (`min_block + 1`).
    ring: usize,
    /// Residue modulus.
    g: u32,
    /// Minutes to charge.
    l: u32,
    /// The off state with every allowed block used (none without a limit).
    done: usize,
    /// Entries per (flag, blocks) in the off tables (`l + 1`).
    width: usize,
    /// Entries per residue and state (`l / g + 1`).
    e: usize,
    /// Offset of each flag's region inside a ring slot of values.
    foff: [usize; 2],
    /// Values per ring slot.
    slot_size: usize,
}

/// A partial run: `t` minutes at the start (`pre`) or end (`suf`) of a
/// run, landing on residue `r`, `dq` steps of `g` further.
#[derive(Debug, Clone, Copy)]
struct Part {
    t: u32,
    r: u32,
    dq: u32,
    pre: i128,
    suf: i128,
}

/// A layer's bounds and table offsets. Values and back pointers of a
/// layer share one layout: by flag, then state, residue and `q = j / g`,
/// live entries only, so a layer's values are contiguous and small.
struct Tgt {
    lo: u32,
    hi: u32,
    mask: [u64; 2],
    vbase: [usize; 2],
    base: [usize; 2],
    cnt: [usize; 2],
    slot: usize,
    layer: usize,
    /// Rank of each live residue among its flag's live residues.
    rank: [[u8; 64]; 2],
}

impl Tgt {
    /// Offset of state (`f`, `local`) at `j = r + q * g` within its region.
    #[inline(always)]
    fn offset(&self, sh: &Shape, f: usize, local: usize, r: u32, q: u32) -> usize {
        let ridx = self.rank[f][r as usize] as usize;
        (local * self.cnt[f] + ridx) * sh.e + q as usize
    }
}

impl Shape {
    fn state(&self, f: usize, k: usize, on: usize) -> usize {
        (f * self.ks + k) * 2 + on
    }

    fn flags(&self) -> usize {
        self.states / (self.ks * 2)
    }
}

/// The tables a step writes, borrowed apart from the solver so the hot
/// loop keeps their addresses in registers.
struct Tables<'a> {
    vals: &'a mut [i128],
    back: &'a mut [u64],
    active: &'a mut [Vec<u32>],
    offv: &'a mut [i128],
    offo: &'a mut [u32],
    offlist: &'a mut [Vec<u32>],
}

impl Tables<'_> {
    /// Offers value `v` to state (`f`, `local`) at `j = r + q * g` of the
    /// target layer.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn relax(
        &mut self,
        sh: &Shape,
        t: &Tgt,
        f: usize,
        local: usize,
        j: u32,
        r: u32,
        q: u32,
        v: i128,
        code: u64,
    ) {
        if j < t.lo || j > t.hi || t.mask[f] & (1 << r) == 0 {
            return;
        }
        // off with every block used: only a finished plan may end there
        if local == sh.done && j < sh.l {
            return;
        }
        let off = t.offset(sh, f, local, r, q);
        if local & 1 == 0 {
            // off states are not copied from layer to layer: one value per
            // (flag, blocks, j) and the layer it was entered at
            let k = local / 2;
            let idx = (f * sh.ks + k) * sh.width + j as usize;
            let cur = self.offv[idx];
            if v < cur {
                if cur == INF {
                    self.offlist[f * sh.ks + k].push(pack(r, q));
                }
                self.offv[idx] = v;
                self.offo[idx] = t.layer as u32;
                self.back[t.base[f] + off] = code;
            }
            return;
        }
        let i = t.vbase[f] + off;
        let cur = self.vals[i];
        if v < cur {
            if cur == INF {
                let st = f * sh.ks * 2 + local;
                self.active[t.slot * sh.states + st].push(pack(r, q));
            }
            self.vals[i] = v;
            self.back[t.base[f] + off] = code;
        }
    }
}

impl Dp {
    /// Fills `out` with an optimal plan; returns Ok(false) when no plan
    /// satisfies the constraints.
    pub fn solve(&mut self, p: &Problem, out: &mut Vec<(u32, u32)>) -> Result<bool, PlanError> {
        out.clear();
        let unit = p.min_block > 1;
        let mut units = std::mem::take(&mut self.units);
        let segs: &[Seg] = if unit {
            units.clear();
            for s in p.segs {
                for i in 0..s.len {
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
            p.segs
        };
        let r = self.run(p, segs, unit, out);
        self.units = units;
        r
    }

    fn run(
        &mut self,
        p: &Problem,
        segs: &[Seg],
        unit: bool,
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
            for (i, s) in segs.iter().enumerate() {
                let edge = i == 0
                    || i + 1 == ns
                    || s.forced
                    || segs.get(i + 1).is_some_and(|n| n.forced != s.forced);
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
        self.offv[0] = 0;
        self.offlist[0].push(pack(0, 0));

        self.cost_prefix.clear();
        self.cost_prefix.push(0);
        let mut acc = 0i128;
        for s in segs {
            acc += i128::from(s.c) * i128::from(s.len);
            self.cost_prefix.push(acc);
        }
        self.bounds(p, segs);
        for s in 0..ns {
            self.step(p, segs, &shape, s, unit, m);
        }

        // best final state
        let mut best = INF;
        let mut best_state = (usize::MAX, 0);
        let last = self.target(&shape, ns);
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
                        let off = last.offset(&shape, f, k * 2 + on, l % g, l / g);
                        (self.vals[last.vbase[f] + off], ns)
                    };
                    if v < best {
                        best = v;
                        best_state = (st, layer);
                    }
                }
            }
        }
        if best == INF {
            return Ok(false);
        }

        self.backtrack(segs, &shape, best_state.0, best_state.1, m, out);
        Ok(true)
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

    /// Bounds for pruning: `cmin[s]`, the cheapest price from run `s` on,
    /// and `ub`, the cost of the best single block (always allowed). A
    /// state whose cost plus its remaining minutes at `cmin` exceeds `ub`
    /// cannot lead to an optimal plan.
    fn bounds(&mut self, p: &Problem, segs: &[Seg]) {
        self.cmin.clear();
        self.cmin.resize(segs.len() + 1, i128::MAX);
        for s in (0..segs.len()).rev() {
            self.cmin[s] = self.cmin[s + 1].min(i128::from(segs[s].c));
        }
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
        let mut ub = cost_to(l);
        if !segs.first().is_some_and(|s| s.forced) {
            for s in segs {
                for a in [s.start, (s.start + s.len).saturating_sub(l)] {
                    if a + l <= p.n && a + l >= l {
                        ub = ub.min(cost_to(a + l) - cost_to(a));
                    }
                }
            }
        }
        self.ub = ub;
    }

    fn prefix_cost(&self, i: usize) -> i128 {
        self.cost_prefix[i]
    }

    fn step(&mut self, p: &Problem, segs: &[Seg], sh: &Shape, s: usize, unit: bool, m: u32) {
        let seg = segs[s];
        let (l, g, len) = (p.l, sh.g, seg.len);
        let full = run_key(seg.c, p.later, p.n, seg.start, len);
        let limited = p.max_blocks.is_some();
        let partial_ok = !unit && !seg.forced && len >= 2;
        let src = self.target(sh, s);
        let next = self.target(sh, s + 1);
        let cmin = self.cmin[s];
        let ns = segs.len();
        let jump = (unit && s + m as usize <= ns).then(|| self.target(sh, s + m as usize));
        // partial runs this segment offers from each live residue of flag 0
        let mut parts = std::mem::take(&mut self.parts);
        let mut ranges = [(0u32, 0u32); 64];
        // where a full run takes each live residue: (residue, steps of g)
        let mut fulls = [(0u32, 0u32); 64];
        for mask in src.mask {
            let mut x = mask;
            while x != 0 {
                let r = x.trailing_zeros();
                x &= x - 1;
                fulls[r as usize] = ((r + len) % g, (r + len) / g);
            }
        }
        parts.clear();
        if partial_ok {
            let mut x = src.mask[0];
            while x != 0 {
                let r = x.trailing_zeros();
                x &= x - 1;
                let from = parts.len() as u32;
                let mut y = next.mask[1];
                while y != 0 {
                    let r1 = y.trailing_zeros();
                    y &= y - 1;
                    let mut t = (r1 + g - r) % g;
                    if t == 0 {
                        t = g;
                    }
                    while t < len {
                        parts.push(Part {
                            t,
                            r: r1,
                            dq: (r + t) / g,
                            pre: run_key(seg.c, p.later, p.n, seg.start, t),
                            suf: run_key(seg.c, p.later, p.n, seg.start + len - t, t),
                        });
                        t += g;
                    }
                }
                ranges[r as usize] = (from, parts.len() as u32);
            }
        }
        let (mut vals, mut back, mut active) = (
            std::mem::take(&mut self.vals),
            std::mem::take(&mut self.back),
            std::mem::take(&mut self.active),
        );
        let (mut offv, mut offo, mut offlist) = (
            std::mem::take(&mut self.offv),
            std::mem::take(&mut self.offo),
            std::mem::take(&mut self.offlist),
        );
        let mut tb = Tables {
            vals: &mut vals,
            back: &mut back,
            active: &mut active,
            offv: &mut offv,
            offo: &mut offo,
            offlist: &mut offlist,
        };
        let (lo, prune) = (src.lo, |v: i128, j: u32| {
            (v >> 64) + i128::from(l - j) * cmin > self.ub
        });

        // off states first, flag 1 before flag 0 (whose partial runs enter
        // flag 1 off states at the next layer); entries entered at the next
        // layer during this step wait for it
        for f in (0..sh.flags()).rev() {
            for k in 0..sh.ks {
                let st = sh.state(f, k, 0);
                let nk = if limited { k + 1 } else { k };
                let can_start = nk < sh.ks;
                let mut list = std::mem::take(&mut tb.offlist[f * sh.ks + k]);
                let mut kept = 0;
                for n in 0..list.len() {
                    let e = list[n];
                    let (r, q) = unpack(e);
                    let j = r + q * g;
                    let idx = (f * sh.ks + k) * sh.width + j as usize;
                    let (v, origin) = (tb.offv[idx], tb.offo[idx]);
                    if origin as usize > s {
                        list[kept] = e;
                        kept += 1;
                        continue;
                    }
                    // dead for good: too few minutes left, a residue that
                    // can no longer add up to `l`, or beaten by a known plan
                    if j < lo || src.mask[f] & (1 << r) == 0 || prune(v, j) {
                        tb.offv[idx] = INF;
                        continue;
                    }
                    // no waiting through a forced run
                    if !seg.forced {
                        list[kept] = e;
                        kept += 1;
                    } else {
                        tb.offv[idx] = INF;
                    }
                    if !can_start {
                        continue;
                    }
                    let to = nk * 2 + 1;
                    if !unit && j + len <= l {
                        let (r2, dq) = fulls[r as usize];
                        let code = from_off(encode(st, FULL, 0), origin);
                        tb.relax(
                            sh,
                            &next,
                            f,
                            to,
                            j + len,
                            r2,
                            q + dq,
                            v + full + BLOCK,
                            code,
                        );
                    }
                    if unit {
                        if let Some(t) = &jump {
                            if j + m <= l {
                                let at = s + m as usize;
                                let key = self.prefix[at] - self.prefix[s] + BLOCK;
                                let code = from_off(encode(st, JUMP, 0), origin);
                                tb.relax(sh, t, 0, to, j + m, 0, j + m, v + key, code);
                            }
                        }
                        let rest = l - j;
                        let at = s + rest as usize;
                        if rest >= 1 && rest < m && at <= ns {
                            let t = self.target(sh, at);
                            let key = self.prefix[at] - self.prefix[s] + BLOCK;
                            let code = from_off(encode(st, FINAL, rest), origin);
                            tb.relax(sh, &t, 0, to, l, 0, l, v + key, code);
                        }
                    }
                    if f != 0 || !partial_ok {
                        continue;
                    }
                    let (a, b) = ranges[r as usize];
                    for pt in &parts[a as usize..b as usize] {
                        if j + pt.t > l {
                            continue;
                        }
                        let (j2, q2) = (j + pt.t, q + pt.dq);
                        // a block from the run's start, stopping inside it
                        let code = from_off(encode(st, PREFIX, pt.t), origin);
                        let w = v + pt.pre + BLOCK;
                        tb.relax(sh, &next, 1, nk * 2, j2, pt.r, q2, w, code);
                        // a block from inside the run, running on
                        let code = from_off(encode(st, SUFFIX, pt.t), origin);
                        let w = v + pt.suf + BLOCK;
                        tb.relax(sh, &next, 1, to, j2, pt.r, q2, w, code);
                    }
                }
                list.truncate(kept);
                tb.offlist[f * sh.ks + k] = list;
            }
        }

        // then the charging states, state by state so branches on the
        // state are predictable
        for f in 0..sh.flags() {
            for k in 0..sh.ks {
                let st = sh.state(f, k, 1);
                let local = k * 2 + 1;
                let nk = if limited { k + 1 } else { k };
                let can_start = nk < sh.ks;
                let list = std::mem::take(&mut tb.active[src.slot * sh.states + st]);
                for &e in &list {
                    let (r, q) = unpack(e);
                    let j = r + q * g;
                    let i = src.vbase[f] + src.offset(sh, f, local, r, q);
                    let v = tb.vals[i];
                    tb.vals[i] = INF;
                    if prune(v, j) {
                        continue;
                    }
                    if !seg.forced {
                        // the block ends where the run starts
                        tb.relax(sh, &next, f, k * 2, j, r, q, v, encode(st, NONE, 0));
                    }
                    if j + len <= l {
                        let (r2, dq) = fulls[r as usize];
                        let code = encode(st, FULL, 0);
                        tb.relax(sh, &next, f, local, j + len, r2, q + dq, v + full, code);
                    }
                    if f != 0 || !partial_ok {
                        continue;
                    }
                    let (a, b) = ranges[r as usize];
                    for pt in &parts[a as usize..b as usize] {
                        if j + pt.t > l {
                            continue;
                        }
                        let (j2, q2) = (j + pt.t, q + pt.dq);
                        // continue into the run, stop inside it
                        let code = encode(st, PREFIX, pt.t);
                        tb.relax(sh, &next, 1, k * 2, j2, pt.r, q2, v + pt.pre, code);
                        if can_start {
                            // stop at the run's start, start again inside it
                            let code = encode(st, SUFFIX, pt.t);
                            let w = v + pt.suf + BLOCK;
                            tb.relax(sh, &next, 1, nk * 2 + 1, j2, pt.r, q2, w, code);
                        }
                    }
                }
                let mut list = list;
                list.clear();
                tb.active[src.slot * sh.states + st] = list;
            }
        }
        self.offv = offv;
        self.offo = offo;
        self.offlist = offlist;
        self.vals = vals;
        self.back = back;
        self.active = active;
        self.parts = parts;
    }

    fn backtrack(
        &mut self,
        segs: &[Seg],
        sh: &Shape,
        mut state: usize,
        mut layer: usize,
        m: u32,
        out: &mut Vec<(u32, u32)>,
    ) {
        self.steps.clear();
        let mut j = sh.l;
        while layer > 0 {
            let (prev, kind, t, origin) = decode({
                let t = self.target(sh, layer);
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

/// Packs a live entry (residue, `j / g`) of a state's list into a u32.
fn pack(r: u32, q: u32) -> u32 {
    q | (r << 24)
}

fn unpack(e: u32) -> (u32, u32) {
    (e >> 24, e & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::greedy::Greedy;
    use crate::problem::plan_key;
    use proptest::prelude::*;

    /// Long curves of quarter-hour runs with few price levels: the fast path
    /// and the dynamic programme must agree on the key whenever the fast
    /// path answers, and the programme must stay within its limits.
    fn segs() -> impl Strategy<Value = (Vec<Seg>, u32, u32)> {
        (
            proptest::collection::vec(0i64..5, 2..40),
            1u32..15,
            0u32..15,
        )
            .prop_map(|(prices, first, forced)| {
                let mut segs = Vec::new();
                let mut start = 0;
                for (i, c) in prices.into_iter().enumerate() {
                    let len = if i == 0 { first } else { 15 };
                    segs.push(Seg {
                        start,
                        len,
                        c,
                        forced: false,
                    });
                    start += len;
                }
                let forced = forced.min(first);
                if forced > 0 {
                    let s0 = segs[0];
                    segs[0].len = forced;
                    segs[0].forced = true;
                    if s0.len > forced {
                        segs.insert(
                            1,
                            Seg {
                                start: forced,
                                len: s0.len - forced,
                                c: s0.c,
                                forced: false,
                            },
                        );
                    }
                }
                (segs, start, forced)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn dp_agrees_with_the_fast_path((segs, n, forced) in segs(), frac in 0.0f64..1.0, later in any::<bool>()) {
            let l = forced.max((f64::from(n) * frac) as u32).min(n);
            prop_assume!(l > 0);
            let p = Problem { segs: &segs, n, l, max_blocks: None, min_block: 1, later };
            let (mut fast, mut exact) = (Vec::new(), Vec::new());
            let answered = Greedy::default().solve(&p, &mut fast);
            prop_assert!(Dp::default().solve(&p, &mut exact).unwrap());
            let minutes: u32 = exact.iter().map(|b| b.1 - b.0).sum();
            prop_assert_eq!(minutes, l);
            if answered {
                prop_assert_eq!(plan_key(&p, &fast), plan_key(&p, &exact));
            }
            // a block limit can only make the key worse or equal
            let limited = Problem { max_blocks: Some(2), ..p };
            let mut two = Vec::new();
            prop_assert!(Dp::default().solve(&limited, &mut two).unwrap());
            prop_assert!(two.len() <= 2);
            prop_assert!(plan_key(&p, &two) >= plan_key(&p, &exact));
        }
    }
}
