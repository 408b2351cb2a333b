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

/// The cost of an allowed plan made from `hint`, if one comes out. When a
/// latest end binds, one more block of the cheapest minute that may end
/// the plan usually costs far less than stretching the last block to it
/// (and trimming the stretch, minute by minute, is slow): that is tried
/// first.
pub(super) fn repair(
    p: &Problem,
    hint: &[(u32, u32)],
    b: &mut Vec<(u32, u32)>,
    order: &mut Vec<u32>,
) -> Option<i128> {
    let mended = from_hint(p, hint, b);
    if p.pause <= 1 {
        return mended;
    }
    // filling short pauses often costs much more than leaving a run out
    match (mended, pack(p, b, order)) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

fn from_hint(p: &Problem, hint: &[(u32, u32)], b: &mut Vec<(u32, u32)>) -> Option<i128> {
    let last = *hint.last()?;
    b.clear();
    b.extend_from_slice(hint);
    if last.1 < p.finish {
        if let Some(x) = late_minute(p).filter(|&x| x >= last.1) {
            b.push((x, x + 1));
            if let Some(cost) = mend(p, b) {
                return Some(cost);
            }
            b.clear();
            b.extend_from_slice(hint);
        }
    }
    mend(p, b)
}

/// The cheapest minute from `finish - 1` on (the latest of equals), when a
/// latest end binds.
fn late_minute(p: &Problem) -> Option<u32> {
    if p.finish == 0 || p.finish > p.n {
        return None;
    }
    let segs = p.segs;
    let first = segs.partition_point(|s| s.start + s.len < p.finish);
    let mut best: Option<(i64, u32)> = None;
    for s in &segs[first..] {
        if best.is_none_or(|(c, _)| s.c <= c) {
            best = Some((s.c, s.start + s.len - 1));
        }
    }
    best.map(|b| b.1)
}

/// A plan packed with a shortest pause in mind: the forced part, the
/// cheapest minute that may end the plan (with a latest end), then the
/// cheapest runs, each whole (the last in part) where it joins a chosen
/// block or stays `pause` away from the chosen ones. Its cost, if it is
/// allowed.
fn pack(p: &Problem, b: &mut Vec<(u32, u32)>, order: &mut Vec<u32>) -> Option<i128> {
    let segs = p.segs;
    b.clear();
    let forced: u32 = segs.iter().take_while(|s| s.forced).map(|s| s.len).sum();
    let mut total = 0;
    if forced > 0 {
        b.push((0, forced));
        total = forced;
    }
    let late = late_minute(p).filter(|&x| x >= forced && total < p.l);
    if let Some(x) = late {
        place(p, b, x, x + 1);
        total += 1;
    }
    order.clear();
    order.extend((0..segs.len() as u32).filter(|&i| !segs[i as usize].forced));
    order.sort_unstable_by_key(|&i| (segs[i as usize].c, if p.later { u32::MAX - i } else { i }));
    for &i in order.iter() {
        if total == p.l {
            break;
        }
        let s = segs[i as usize];
        let end = s.start + s.len;
        // the late minute is taken already
        let (lo, hi) = match late {
            Some(x) if s.start <= x && x < end => (s.start, x),
            _ => (s.start, end),
        };
        for (a, e) in [(lo, hi), (late.map_or(end, |x| x + 1).max(lo), end)] {
            if a >= e || (e - a) as usize == 0 {
                continue;
            }
            let take = (e - a).min(p.l - total);
            let (a, e) = if fits(p, b, a, a + take) {
                (a, a + take)
            } else if fits(p, b, e - take, e) {
                (e - take, e)
            } else {
                continue;
            };
            place(p, b, a, e);
            total += take;
            if total == p.l {
                break;
            }
        }
    }
    let ok = total == p.l
        && p.allows(b)
        && (forced == 0 || b.first().is_some_and(|x| x.0 == 0 && x.1 >= forced));
    ok.then(|| b.iter().map(|&(a, e)| cost(segs, a, e)).sum())
}

/// Whether minutes `[a, e)` (none of them chosen) join the chosen blocks
/// or keep the shortest pause from them.
fn fits(p: &Problem, b: &[(u32, u32)], a: u32, e: u32) -> bool {
    let i = b.partition_point(|x| x.1 <= a);
    let before = i.checked_sub(1).map(|k| b[k]);
    let ok_before = match before {
        Some(x) => x.1 == a || a - x.1 >= p.pause,
        // a stopped session restarts after a pause
        None => !p.running || a == 0 || a >= p.pause,
    };
    let ok_after = b.get(i).is_none_or(|x| x.0 == e || x.0 >= e + p.pause);
    ok_before && ok_after && b.get(i).is_none_or(|x| x.0 >= e)
}

/// Adds `[a, e)` to the sorted blocks, joining touching ones.
fn place(_p: &Problem, b: &mut Vec<(u32, u32)>, a: u32, e: u32) {
    let i = b.partition_point(|x| x.1 <= a);
    b.insert(i, (a, e));
    if i + 1 < b.len() && b[i + 1].0 == e {
        b[i].1 = b[i + 1].1;
        b.remove(i + 1);
    }
    if i > 0 && b[i - 1].1 == a {
        b[i - 1].1 = b[i].1;
        b.remove(i);
    }
}

/// Makes `b` (sorted blocks, maybe too many minutes) allowed: returns its
/// cost if that works.
fn mend(p: &Problem, b: &mut Vec<(u32, u32)>) -> Option<i128> {
    let segs = p.segs;
    let forced = segs
        .iter()
        .take_while(|s| s.forced)
        .map(|s| s.len)
        .sum::<u32>();
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
