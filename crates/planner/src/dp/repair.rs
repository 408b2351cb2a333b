//! An allowed plan near a cheaper one that breaks the constraints: its
//! cost bounds the exact solver's search far more tightly than the best
//! single block, and only an allowed plan's cost may bound it.
//!
//! From the plan the solver relaxed (no block limit, or no pause): too
//! short pauses and, beyond `max_blocks`, the cheapest pauses are filled,
//! the last block is stretched to the latest end, then the dearest minute
//! at a block's edge is dropped until exactly `l` minutes remain.

use crate::problem::{Problem, Seg};

/// A problem's runs with the run of every minute at hand: the repair
/// looks up edge minutes thousands of times per solve.
#[derive(Clone, Copy)]
struct Runs<'a> {
    segs: &'a [Seg],
    /// The run of each minute of the horizon.
    at: &'a [u32],
}

impl Runs<'_> {
    /// Index of the run holding minute `x`.
    fn index(&self, x: u32) -> usize {
        match self.at.get(x as usize) {
            Some(&i) => i as usize,
            None => self.segs.partition_point(|s| s.start + s.len <= x),
        }
    }

    /// The run holding minute `x`.
    fn of(&self, x: u32) -> Seg {
        self.segs[self.index(x)]
    }

    /// Cost of minutes `[a, b)`.
    fn cost(&self, a: u32, b: u32) -> i128 {
        let mut sum = 0i128;
        for s in self.segs.get(self.index(a)..).unwrap_or_default() {
            if s.start >= b {
                break;
            }
            let (lo, hi) = (a.max(s.start), b.min(s.start + s.len));
            sum += i128::from(s.c) * i128::from(hi - lo);
        }
        sum
    }
}

/// Fills `at` with the run of every minute of `segs`.
fn index_minutes(segs: &[Seg], at: &mut Vec<u32>) {
    at.clear();
    for (i, s) in segs.iter().enumerate() {
        at.resize(at.len() + s.len as usize, i as u32);
    }
}

/// Sorted blocks `[start, end)` of minutes.
type Blocks = Vec<(u32, u32)>;

/// Buffers of the repair, kept by the solver between solves.
#[derive(Debug, Default)]
pub(super) struct Work {
    /// The plan being built or mended.
    b: Vec<(u32, u32)>,
    /// The cheapest allowed plan so far.
    best: Vec<(u32, u32)>,
    /// Runs by price (see [`pack`]).
    order: Vec<u32>,
    /// See [`Runs::at`].
    at: Vec<u32>,
}

impl Work {
    /// The plan behind the cost [`repair`] returned last.
    #[cfg(test)]
    pub(super) fn plan(&self, p: &Problem) -> &[(u32, u32)] {
        if !improves(p) {
            &self.b
        } else {
            &self.best
        }
    }
}

/// The cost of an allowed plan made from `hint`, if one comes out. When a
/// latest end binds, one more block of the cheapest minute that may end
/// the plan usually costs far less than stretching the last block to it
/// (and trimming the stretch, minute by minute, is slow): that is tried
/// first. With a pause, the cheaper of that and a packed plan is then
/// improved locally (see [`improve`]).
pub(super) fn repair(p: &Problem, hint: &[(u32, u32)], w: &mut Work) -> Option<i128> {
    index_minutes(p.segs, &mut w.at);
    let runs = Runs {
        segs: p.segs,
        at: &w.at,
    };
    let mended = from_hint(p, runs, hint, &mut w.b);
    if !improves(p) {
        return mended;
    }
    w.best.clear();
    if mended.is_some() {
        w.best.extend_from_slice(&w.b);
    }
    // filling short pauses often costs much more than leaving a run out
    let packed = pack(p, runs, &mut w.b, &mut w.order);
    let cost = match (mended, packed) {
        (Some(a), Some(c)) if c < a => {
            std::mem::swap(&mut w.best, &mut w.b);
            c
        }
        (Some(a), _) => a,
        (None, Some(c)) => {
            std::mem::swap(&mut w.best, &mut w.b);
            c
        }
        (None, None) => return None,
    };
    Some(improve(p, runs, (&mut w.b, &mut w.best), &w.order, cost))
}

/// Whether [`repair`] improves its plan locally: with a pause or a block
/// limit, where the mended plan is often a little above the optimum.
fn improves(p: &Problem) -> bool {
    p.pause > 1 || p.max_blocks.is_some()
}

/// Rounds of [`improve`] at most: each round costs about as much as a
/// few dozen mends.
const ROUNDS: usize = 8;

/// Whole runs tried as a new block per round: the cheapest that fit.
const NEW_RUNS: usize = 4;

/// Local search from the allowed plan `best` of cost `cost`: each round
/// adds minutes where they may pay (a pause of up to twice the shortest
/// filled, a block stretched to the edge of the run it ends or starts in,
/// one of the cheapest runs that fit as a block of its own), mends the plan back to `l` minutes
/// (dropping the dearest edge minutes) and keeps the cheapest allowed
/// result, while one is cheaper. With a pause the packed and mended
/// plans are often a few per cent above the optimum, and the exact
/// solver's work grows with that distance: two or three rounds usually
/// reach the optimum's cost. Returns the cost of `best`; `b` is scratch.
fn improve(
    p: &Problem,
    runs: Runs,
    (b, best): (&mut Blocks, &mut Blocks),
    order: &[u32],
    mut cost: i128,
) -> i128 {
    let segs = p.segs;
    if p.l == 0 || segs.is_empty() {
        return cost;
    }
    let run = |x: u32| runs.of(x);
    for _ in 0..ROUNDS {
        let mut found: Option<(i128, u32, u32)> = None;
        let mut consider = |b: &mut Vec<(u32, u32)>, best: &[(u32, u32)], x: u32, y: u32| {
            if x >= y {
                return;
            }
            b.clear();
            b.extend_from_slice(best);
            place(p, b, x, y);
            if let Some(c) = mend(p, runs, b) {
                if c < found.map_or(cost, |f| f.0) {
                    found = Some((c, x, y));
                }
            }
        };
        let k = best.len();
        for i in 0..k {
            let (a, e) = best[i];
            // the pause after the block, filled: a long one costs a long
            // trim and rarely pays
            if i + 1 < k && best[i + 1].0 - e <= 2 * p.pause {
                consider(b, best, e, best[i + 1].0);
            }
            // the block stretched to the end of its last minute's run ...
            if e < p.n {
                let s = run(e);
                let next = best.get(i + 1).map_or(p.n, |x| x.0);
                consider(b, best, e, (s.start + s.len).min(next));
            }
            // ... and back to the start of its first minute's run
            if a > 0 {
                let s = run(a - 1);
                let prev = i.checked_sub(1).map_or(0, |j| best[j].1);
                consider(b, best, s.start.max(prev), a);
            }
        }
        let mut tried = 0;
        for &r in order {
            if tried == NEW_RUNS {
                break;
            }
            let s = segs[r as usize];
            if fits(p, best, s.start, s.start + s.len) {
                tried += 1;
                consider(b, best, s.start, s.start + s.len);
            }
        }
        let Some((c, x, y)) = found else {
            break;
        };
        b.clear();
        b.extend_from_slice(best);
        place(p, b, x, y);
        if mend(p, runs, b) != Some(c) {
            // unreachable: the same mend again
            break;
        }
        std::mem::swap(best, b);
        cost = c;
    }
    cost
}

fn from_hint(
    p: &Problem,
    runs: Runs,
    hint: &[(u32, u32)],
    b: &mut Vec<(u32, u32)>,
) -> Option<i128> {
    let last = *hint.last()?;
    b.clear();
    b.extend_from_slice(hint);
    if last.1 < p.finish {
        if let Some(x) = late_minute(p).filter(|&x| x >= last.1) {
            b.push((x, x + 1));
            if let Some(cost) = mend(p, runs, b) {
                return Some(cost);
            }
            b.clear();
            b.extend_from_slice(hint);
        }
    }
    mend(p, runs, b)
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
fn pack(p: &Problem, runs: Runs, b: &mut Vec<(u32, u32)>, order: &mut Vec<u32>) -> Option<i128> {
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
    ok.then(|| b.iter().map(|&(a, e)| runs.cost(a, e)).sum())
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
fn mend(p: &Problem, runs: Runs, b: &mut Vec<(u32, u32)>) -> Option<i128> {
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
            let i = (0..b.len() - 1).min_by_key(|&i| runs.cost(b[i].1, b[i + 1].0))?;
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
                let c = runs.of(a).c;
                // the last block must keep a minute
                if !(is_last && e - a == 1) && best.is_none_or(|x| c > x.0) {
                    best = Some((c, i, true));
                }
            }
            // an end: not below the latest end for the last block
            let keep = e - a == 1 && (is_last || (p.running && a == 0));
            if e > forced && !(is_last && e - 1 < p.finish) && !keep {
                let c = runs.of(e - 1).c;
                if best.is_none_or(|x| c > x.0) {
                    best = Some((c, i, false));
                }
            }
        }
        let (_, i, start) = best?;
        // the same edge stays the dearest while its next minute is in the
        // same run, no rule about its block changes and minutes are over:
        // drop them at once (the block keeps a minute, which the next
        // pass drops if it is still the dearest)
        let (a, e) = b[i];
        let s = runs.of(if start { a } else { e - 1 });
        let mut take = (total - p.l).min((e - a).saturating_sub(1)).max(1);
        if start {
            take = take.min(s.start + s.len - a);
            b[i].0 += take;
        } else {
            take = take.min(e - s.start).min(e - forced);
            if i + 1 == b.len() && p.finish > 0 {
                take = take.min(e - p.finish).max(1);
            }
            b[i].1 -= take;
        }
        if b[i].0 == b[i].1 {
            b.remove(i);
        }
        total -= take;
    }
    let ok = total == p.l
        && p.allows(b)
        && (forced == 0 || b.first().is_some_and(|x| x.0 == 0 && x.1 >= forced))
        && b.iter().all(|x| x.1 <= p.n);
    ok.then(|| b.iter().map(|&(a, e)| runs.cost(a, e)).sum())
}
