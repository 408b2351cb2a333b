//! One step of the solver: every reached state of a layer offers its
//! transitions over the next run.

use super::layout::*;
use super::{layer_at, tail_key, Dp};
use crate::problem::{run_key, Problem, Seg, BLOCK};

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
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step(
        &mut self,
        p: &Problem,
        segs: &[Seg],
        sh: &Shape,
        s: usize,
        unit: bool,
        m: u32,
    ) {
        let seg = segs[s];
        let (l, g, len) = (p.l, sh.g, seg.len);
        let full = run_key(seg.c, p.later, p.n, seg.start, len);
        let limited = p.max_blocks.is_some();
        let partial_ok = !unit && !seg.forced && len >= 2;
        let tgts = std::mem::take(&mut self.tgts);
        let (src, next) = (&tgts[s], &tgts[s + 1]);
        let w = l as usize + 1;
        let run = self.lbi[s] as usize;
        let (tight, cmin) = (self.tight, self.cmin.get(run).copied().unwrap_or(0));
        let lb = if tight {
            &self.lb[run * w..(run + 1) * w]
        } else {
            &[][..]
        };
        let ns = segs.len();
        let jump = (unit && s + m as usize <= ns).then(|| &tgts[s + m as usize]);
        // a stop before the plan is done waits for the shortest pause
        let (waits, pause) = (p.pause > 1, p.pause);
        let reach = if waits { self.reach[s] as usize } else { s + 1 };
        // plans ending with a minute pinned a pause after their last stop
        let tails = waits && !unit && p.finish > 0;
        let mut tail = self.tail;
        let mut offer = |v: i128, state: usize, layer: usize, j: u32, t: u32| {
            if let Some(key) = tail_key(p, segs, seg.start + t + pause) {
                let v = v + key;
                if tail.is_none_or(|x| v < x.v) {
                    tail = Some(Tail {
                        v,
                        state,
                        layer,
                        j,
                        run: s,
                        t,
                        x: seg.start + t + pause,
                    });
                }
            }
        };
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
        // computed for a residue when a state first needs them: with a
        // tight bound most residues have no state left
        let next_mask = next.mask[1];
        let ensure = |r: u32, parts: &mut Vec<Part>, ranges: &mut [(u32, u32); 64]| {
            if ranges[r as usize].0 != u32::MAX {
                return;
            }
            let from = parts.len() as u32;
            let mut y = next_mask;
            while y != 0 {
                let r1 = y.trailing_zeros();
                y &= y - 1;
                let mut t = (r1 + g - r) % g;
                if t == 0 {
                    t = g;
                }
                while t < len {
                    let wait = if waits {
                        layer_at(segs, seg.start + t + pause) as u32
                    } else {
                        s as u32 + 1
                    };
                    parts.push(Part {
                        t,
                        wait,
                        r: r1,
                        dq: (r + t) / g,
                        pre: run_key(seg.c, p.later, p.n, seg.start, t),
                        suf: run_key(seg.c, p.later, p.n, seg.start + len - t, t),
                    });
                    t += g;
                }
            }
            ranges[r as usize] = (from, parts.len() as u32);
        };
        ranges.fill((u32::MAX, 0));
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
        let ub = self.ub;
        let (lo, prune) = (src.lo, |v: i128, j: u32| {
            let rest = if tight {
                i128::from(lb[(l - j) as usize])
            } else {
                i128::from(l - j) * cmin
            };
            (v >> 64) + rest > ub
        });
        // stops that complete the plan must not be before `finish`
        let (finish, stop_here) = (p.finish, seg.start >= p.finish);
        // waiting states whose pause ends here join the others first
        let mut arrivals = std::mem::take(&mut self.arrivals);
        for a in arrivals[s].drain(..) {
            let local = a.k as usize * 2;
            let (f, j) = (a.f as usize, a.j);
            tb.relax(sh, src, f, local, j, j % g, j / g, a.v, a.code);
        }

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
                        tb.relax(sh, next, f, to, j + len, r2, q + dq, v + full + BLOCK, code);
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
                            let t = &tgts[at];
                            let key = self.prefix[at] - self.prefix[s] + BLOCK;
                            let code = from_off(encode(st, FINAL, rest), origin);
                            tb.relax(sh, t, 0, to, l, 0, l, v + key, code);
                        }
                    }
                    if f != 0 || !partial_ok {
                        continue;
                    }
                    ensure(r, &mut parts, &mut ranges);
                    let (a, b) = ranges[r as usize];
                    for pt in &parts[a as usize..b as usize] {
                        if j + pt.t > l {
                            continue;
                        }
                        let (j2, q2) = (j + pt.t, q + pt.dq);
                        // a block from the run's start, stopping inside it
                        let w = v + pt.pre + BLOCK;
                        if tails && j2 + 1 == l && (!limited || nk + 1 < sh.ks) {
                            offer(w, st, origin as usize, j, pt.t);
                        }
                        if waits && j2 < l {
                            if (pt.wait as usize) < ns {
                                let back = pt.wait - s as u32;
                                arrivals[pt.wait as usize].push(Arrival {
                                    f: 1,
                                    k: nk as u32,
                                    j: j2,
                                    v: w,
                                    code: from_off(encode_wait(st, pt.t, back), origin),
                                });
                            }
                        } else if j2 < l || seg.start + pt.t >= finish {
                            let code = from_off(encode(st, PREFIX, pt.t), origin);
                            tb.relax(sh, next, 1, nk * 2, j2, pt.r, q2, w, code);
                        }
                        // a block from inside the run, running on
                        let code = from_off(encode(st, SUFFIX, pt.t), origin);
                        let w = v + pt.suf + BLOCK;
                        tb.relax(sh, next, 1, to, j2, pt.r, q2, w, code);
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
                        if j == l {
                            if stop_here {
                                tb.relax(sh, next, f, k * 2, j, r, q, v, encode(st, NONE, 0));
                            }
                        } else if !waits {
                            tb.relax(sh, next, f, k * 2, j, r, q, v, encode(st, NONE, 0));
                        } else {
                            if tails && j + 1 == l && can_start {
                                offer(v, st, s, j, 0);
                            }
                            // the next start comes a pause later at the earliest
                            if reach < ns {
                                arrivals[reach].push(Arrival {
                                    f: f as u32,
                                    k: k as u32,
                                    j,
                                    v,
                                    code: encode(st, PAUSE, (reach - s) as u32),
                                });
                            }
                        }
                    }
                    if j + len <= l {
                        let (r2, dq) = fulls[r as usize];
                        let code = encode(st, FULL, 0);
                        tb.relax(sh, next, f, local, j + len, r2, q + dq, v + full, code);
                    }
                    if f != 0 || !partial_ok {
                        continue;
                    }
                    ensure(r, &mut parts, &mut ranges);
                    let (a, b) = ranges[r as usize];
                    for pt in &parts[a as usize..b as usize] {
                        if j + pt.t > l {
                            continue;
                        }
                        let (j2, q2) = (j + pt.t, q + pt.dq);
                        // continue into the run, stop inside it
                        if tails && j2 + 1 == l && can_start {
                            offer(v + pt.pre, st, s, j, pt.t);
                        }
                        if waits && j2 < l {
                            if (pt.wait as usize) < ns {
                                arrivals[pt.wait as usize].push(Arrival {
                                    f: 1,
                                    k: k as u32,
                                    j: j2,
                                    v: v + pt.pre,
                                    code: encode_wait(st, pt.t, pt.wait - s as u32),
                                });
                            }
                        } else if j2 < l || seg.start + pt.t >= finish {
                            let code = encode(st, PREFIX, pt.t);
                            tb.relax(sh, next, 1, k * 2, j2, pt.r, q2, v + pt.pre, code);
                        }
                        // the pause from the run's start must be long enough
                        if can_start && (!waits || len - pt.t >= pause) {
                            // stop at the run's start, start again inside it
                            let code = encode(st, SUFFIX, pt.t);
                            let w = v + pt.suf + BLOCK;
                            tb.relax(sh, next, 1, nk * 2 + 1, j2, pt.r, q2, w, code);
                        }
                    }
                }
                let mut list = list;
                list.clear();
                tb.active[src.slot * sh.states + st] = list;
            }
        }
        self.arrivals = arrivals;
        self.tgts = tgts;
        self.tail = tail;
        self.offv = offv;
        self.offo = offo;
        self.offlist = offlist;
        self.vals = vals;
        self.back = back;
        self.active = active;
        self.parts = parts;
    }
}
