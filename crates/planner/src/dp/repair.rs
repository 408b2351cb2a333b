//! An allowed plan near a cheaper one that breaks the constraints: its
//! cost bounds the exact solver's search far more tightly than the best
//! single block, and only an allowed plan's cost may bound it.
//!
//! From the plan the solver relaxed (no block limit, or no pause): too
//! short pauses and, beyond `max_blocks`, the cheapest pauses are filled,
//! the last block is stretched to the latest end, then the dearest minute
//! at a block's edge is dropped until exactly `l` minutes remain.

use crate::problem::{Problem, Seg};

/// Cost of minutes `[a, b)`.
fn cost(segs: &[Seg], a: u32, b: u32) -> i128 {
    let first = segs.partition_point(|s| s.start + s.len <= a);
    let mut sum = 0i128;
    for s in &segs[first..] {
        if s.start >= b {
            break;
        }
        let (lo, hi) = (a.max(s.start), b.min(s.start + s.len));
        sum += i128::from(s.c) * i128::from(hi - lo);
    }
    sum
}

fn price(segs: &[Seg], x: u32) -> i64 {
    let i = segs.partition_point(|s| s.start + s.len <= x);
    segs[i].c
}

/// The cost of an allowed plan made from `hint`, if one comes out.
pub(super) fn repair(p: &Problem, hint: &[(u32, u32)], b: &mut Vec<(u32, u32)>) -> Option<i128> {
    if hint.is_empty() {
        return None;
    }
    let segs = p.segs;
    let forced = segs
        .iter()
        .take_while(|s| s.forced)
        .map(|s| s.len)
        .sum::<u32>();
    b.clear();
    b.extend_from_slice(hint);
    // a stopped session restarting too soon runs on instead
    if p.running && p.pause > 1 && b[0].0 > 0 && b[0].0 < p.pause {
        b[0].0 = 0;
    }
    if p.pause > 1 {
        let mut i = 0;
        while i + 1 < b.len() {
            if b[i + 1].0 - b[i].1 < p.pause {
                b[i].1 = b[i + 1].1;
                b.remove(i + 1);
            } else {
                i += 1;
            }
        }
    }
    if let Some(k) = p.max_blocks {
        loop {
            let cont = p.running && b[0].0 == 0;
            if b.len() - usize::from(cont) <= k as usize {
                break;
            }
            // fill the cheapest pause
            let i = (0..b.len() - 1).min_by_key(|&i| cost(segs, b[i].1, b[i + 1].0))?;
            b[i].1 = b[i + 1].1;
            b.remove(i + 1);
        }
    }
    let last = b.len() - 1;
    if b[last].1 < p.finish {
        b[last].1 = p.finish;
    }
    let mut total: u32 = b.iter().map(|x| x.1 - x.0).sum();
    while total > p.l {
        // the dearest removable edge minute
        let mut best: Option<(i64, usize, bool)> = None;
        for (i, &(a, e)) in b.iter().enumerate() {
            let is_last = i + 1 == b.len();
            // a start: not a forced minute, nor the running session's
            if a >= forced && !(a == 0 && p.running) {
                let c = price(segs, a);
                // the last block must keep a minute
                if !(is_last && e - a == 1) && best.is_none_or(|x| c > x.0) {
                    best = Some((c, i, true));
                }
            }
            // an end: not below the latest end for the last block
            let keep = e - a == 1 && (is_last || (p.running && a == 0));
            if e > forced && !(is_last && e - 1 < p.finish) && !keep {
                let c = price(segs, e - 1);
                if best.is_none_or(|x| c > x.0) {
                    best = Some((c, i, false));
                }
            }
        }
        let (_, i, start) = best?;
        if start {
            b[i].0 += 1;
        } else {
            b[i].1 -= 1;
        }
        if b[i].0 == b[i].1 {
            b.remove(i);
        }
        total -= 1;
    }
    let ok = total == p.l
        && p.allows(b)
        && (forced == 0 || b.first().is_some_and(|x| x.0 == 0 && x.1 >= forced))
        && b.iter().all(|x| x.1 <= p.n);
    ok.then(|| b.iter().map(|&(a, e)| cost(segs, a, e)).sum())
}
