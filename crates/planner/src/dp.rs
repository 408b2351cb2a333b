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

fn encode(state: usize, kind: u32, t: u32) -> u32 {
    (state as u32) | (kind << 7) | (t << 10)
}

fn decode(code: u32) -> (usize, u32, u32) {
    ((code & 0x7f) as usize, (code >> 7) & 7, code >> 10)
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
    back: Vec<u32>,
    base: Vec<usize>,
    lo: Vec<u32>,
    hi: Vec<u32>,
    m0: Vec<u64>,
    m1: Vec<u64>,
    suf: Vec<u64>,
    prefix: Vec<i128>,
    units: Vec<Seg>,
    steps: Vec<(u32, u32)>,
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
    /// Entries per state in a value layer (`l + 1`).
    width: usize,
}

impl Shape {
    fn state(&self, f: usize, k: usize, on: usize) -> usize {
        (f * self.ks + k) * 2 + on
    }

    fn flags(&self) -> usize {
        self.states / (self.ks * 2)
    }

    /// Index of a value in the ring of layers.
    fn vidx(&self, layer: usize, state: usize, j: u32) -> usize {
        ((layer % self.ring) * self.states + state) * self.width + j as usize
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
        let shape = Shape {
            layers: ns + 1,
            ks,
            states: nf * ks * 2,
            ring: m as usize + 1,
            g,
            width: l as usize + 1,
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

        // back pointer table, dense over each layer's band
        self.base.clear();
        let mut total = 0usize;
        for s in 0..shape.layers {
            self.base.push(total);
            let w = (self.hi[s] + 1).saturating_sub(self.lo[s]) as usize;
            total += w * shape.states;
        }
        let vals_len = shape.ring * shape.states * shape.width;
        if total > MAX_TABLE || vals_len > MAX_TABLE {
            return Err(PlanError::TooLarge(format!(
                "{} minutes to place in {} runs with min_block_minutes",
                l, ns
            )));
        }
        if self.back.len() < total {
            self.back.resize(total, 0);
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

        for s in 0..shape.ring.min(shape.layers) {
            self.reset(&shape, s);
        }
        let start = shape.vidx(0, shape.state(0, 0, 0), 0);
        self.vals[start] = 0;

        for s in 0..ns {
            if s + shape.ring - 1 < shape.layers && s > 0 {
                self.reset(&shape, s + shape.ring - 1);
            }
            self.step(p, segs, &shape, s, unit, m);
        }

        // best final state
        let mut best = INF;
        let mut best_state = usize::MAX;
        for f in 0..shape.flags() {
            if !self.live(&shape, ns, f, l) {
                continue;
            }
            for k in 0..shape.ks {
                for on in 0..2 {
                    let st = shape.state(f, k, on);
                    let v = self.vals[shape.vidx(ns, st, l)];
                    if v < best {
                        best = v;
                        best_state = st;
                    }
                }
            }
        }
        if best == INF {
            return Ok(false);
        }
        self.backtrack(segs, &shape, best_state, m, out);
        Ok(true)
    }

    fn bidx(&self, layer: usize, state: usize, j: u32) -> usize {
        let w = (self.hi[layer] + 1 - self.lo[layer]) as usize;
        self.base[layer] + state * w + (j - self.lo[layer]) as usize
    }

    fn mask(&self, layer: usize, f: usize) -> u64 {
        if f == 0 {
            self.m0[layer]
        } else {
            self.m1[layer]
        }
    }

    /// Whether `j` is a live entry of flag `f` at `layer`.
    fn live(&self, sh: &Shape, layer: usize, f: usize, j: u32) -> bool {
        j >= self.lo[layer] && j <= self.hi[layer] && self.mask(layer, f) & (1 << (j % sh.g)) != 0
    }

    fn reset(&mut self, sh: &Shape, layer: usize) {
        let (lo, hi) = (self.lo[layer], self.hi[layer]);
        if lo > hi {
            return;
        }
        for f in 0..sh.flags() {
            let mask = self.mask(layer, f);
            for k in 0..sh.ks {
                for on in 0..2 {
                    let st = sh.state(f, k, on);
                    let vals = &mut self.vals;
                    each_live(mask, sh.g, lo, hi, |j| vals[sh.vidx(layer, st, j)] = INF);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn relax(
        &mut self,
        sh: &Shape,
        layer: usize,
        f: usize,
        k: usize,
        on: usize,
        j: u32,
        v: i128,
        code: u32,
    ) {
        if !self.live(sh, layer, f, j) {
            return;
        }
        let st = sh.state(f, k, on);
        let i = sh.vidx(layer, st, j);
        if v < self.vals[i] {
            self.vals[i] = v;
            let b = self.bidx(layer, st, j);
            self.back[b] = code;
        }
    }

    fn step(&mut self, p: &Problem, segs: &[Seg], sh: &Shape, s: usize, unit: bool, m: u32) {
        let seg = segs[s];
        let (lo, hi) = (self.lo[s], self.hi[s]);
        if lo > hi {
            return;
        }
        let l = p.l;
        let full = run_key(seg.c, p.later, p.n, seg.start, seg.len);
        let limited = p.max_blocks.is_some();
        let nf = sh.flags();
        for f in 0..nf {
            let mask = self.mask(s, f);
            for k in 0..sh.ks {
                // the block count after starting a new block
                let nk = if limited { k + 1 } else { k };
                let can_start = nk < sh.ks;
                for on in 0..2 {
                    let st = sh.state(f, k, on);
                    let g = sh.g;
                    let mut x = mask;
                    while x != 0 {
                        let r = x.trailing_zeros();
                        x &= x - 1;
                        let mut j = first_at_least(r, g, lo);
                        while j <= hi {
                            let v = self.vals[sh.vidx(s, st, j)];
                            if v != INF {
                                self.transitions(
                                    p, segs, sh, s, unit, m, f, k, nk, can_start, on, st, j, v,
                                    full, l,
                                );
                            }
                            j += g;
                        }
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn transitions(
        &mut self,
        p: &Problem,
        segs: &[Seg],
        sh: &Shape,
        s: usize,
        unit: bool,
        m: u32,
        f: usize,
        k: usize,
        nk: usize,
        can_start: bool,
        on: usize,
        st: usize,
        j: u32,
        v: i128,
        full: i128,
        l: u32,
    ) {
        let seg = segs[s];
        let len = seg.len;
        if !seg.forced {
            self.relax(sh, s + 1, f, k, 0, j, v, encode(st, NONE, 0));
        }
        if j + len <= l {
            if on == 1 {
                self.relax(sh, s + 1, f, k, 1, j + len, v + full, encode(st, FULL, 0));
            } else if !unit && can_start {
                self.relax(
                    sh,
                    s + 1,
                    f,
                    nk,
                    1,
                    j + len,
                    v + full + BLOCK,
                    encode(st, FULL, 0),
                );
            }
        }
        if unit {
            if on == 0 && can_start {
                let ns = segs.len();
                if j + m <= l && s + m as usize <= ns {
                    let t = s + m as usize;
                    let key = self.prefix[t] - self.prefix[s] + BLOCK;
                    self.relax(sh, t, 0, nk, 1, j + m, v + key, encode(st, JUMP, 0));
                }
                let rest = l - j;
                if rest >= 1 && rest < m && s + rest as usize <= ns {
                    let t = s + rest as usize;
                    let key = self.prefix[t] - self.prefix[s] + BLOCK;
                    self.relax(sh, t, 0, nk, 1, l, v + key, encode(st, FINAL, rest));
                }
            }
            return;
        }
        if f != 0 || sh.flags() < 2 || seg.forced || len < 2 {
            return;
        }
        // the one partial run: t minutes with 1 <= t < len
        let g = sh.g;
        let target = self.m1[s + 1];
        let top = (len - 1).min(l - j.min(l));
        let mut x = target;
        while x != 0 {
            let r = x.trailing_zeros();
            x &= x - 1;
            // smallest t >= 1 with (j + t) % g == r
            let mut t = (r + g - j % g) % g;
            if t == 0 {
                t = g;
            }
            while t <= top {
                let pre = run_key(seg.c, p.later, p.n, seg.start, t);
                let suf = run_key(seg.c, p.later, p.n, seg.start + len - t, t);
                if on == 1 {
                    // continue into the run, stop inside it
                    self.relax(sh, s + 1, 1, k, 0, j + t, v + pre, encode(st, PREFIX, t));
                }
                if can_start {
                    if on == 0 {
                        self.relax(
                            sh,
                            s + 1,
                            1,
                            nk,
                            0,
                            j + t,
                            v + pre + BLOCK,
                            encode(st, PREFIX, t),
                        );
                    }
                    // start inside the run, run on into the next one (when
                    // `on`, the previous block stopped at the run's start)
                    self.relax(
                        sh,
                        s + 1,
                        1,
                        nk,
                        1,
                        j + t,
                        v + suf + BLOCK,
                        encode(st, SUFFIX, t),
                    );
                }
                t += g;
            }
        }
    }

    fn backtrack(
        &mut self,
        segs: &[Seg],
        sh: &Shape,
        mut state: usize,
        m: u32,
        out: &mut Vec<(u32, u32)>,
    ) {
        self.steps.clear();
        let mut layer = sh.layers - 1;
        let mut j = (sh.width - 1) as u32;
        while layer > 0 {
            let (prev, kind, t) = decode(self.back[self.bidx(layer, state, j)]);
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
            layer = from;
            state = prev;
        }
        for &(a, b) in self.steps.iter().rev() {
            push_interval(out, a, b);
        }
    }
}

/// The smallest `j >= lo` with `j % g == r`.
fn first_at_least(r: u32, g: u32, lo: u32) -> u32 {
    if lo <= r {
        r
    } else {
        lo + (r + g - lo % g) % g
    }
}

fn each_live(mask: u64, g: u32, lo: u32, hi: u32, mut f: impl FnMut(u32)) {
    let mut x = mask;
    while x != 0 {
        let r = x.trailing_zeros();
        x &= x - 1;
        let mut j = first_at_least(r, g, lo);
        while j <= hi {
            f(j);
            j += g;
        }
    }
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
