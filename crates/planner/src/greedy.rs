//! The fast path: with no block limit the cheapest plan takes the cheapest
//! minutes. The marginal price (the run price at which the cheapest
//! minutes add up to the plan) is found by a weighted selection over the
//! runs, expected O(s) for s runs; every run below it is charged whole.

use crate::problem::{push_interval, Problem};

/// Reusable buffers of the fast path.
#[derive(Debug, Default)]
pub(crate) struct Greedy {
    /// (price, minutes) of the runs still in the selection.
    order: Vec<(i64, u32)>,
}

/// The lowest price `c` such that the runs priced at most `c` hold at
/// least `need` minutes, and the minutes of the runs priced below it; None
/// when all runs together hold fewer. Reorders `runs`.
fn marginal(runs: &mut [(i64, u32)], mut need: u32) -> Option<(i64, u32)> {
    let mut below = 0u32;
    let mut runs = runs;
    while !runs.is_empty() {
        // median of three as the pivot
        let (a, b, c) = (runs[0].0, runs[runs.len() / 2].0, runs[runs.len() - 1].0);
        let pivot = a.max(b).min(a.min(b).max(c));
        // three-way partition: [< pivot | == pivot | > pivot]
        let (mut lt, mut i, mut gt) = (0, 0, runs.len());
        let (mut less, mut equal) = (0u32, 0u32);
        while i < gt {
            let x = runs[i];
            if x.0 < pivot {
                less += x.1;
                runs.swap(lt, i);
                lt += 1;
                i += 1;
            } else if x.0 > pivot {
                gt -= 1;
                runs.swap(i, gt);
            } else {
                equal += x.1;
                i += 1;
            }
        }
        if less >= need {
            runs = &mut runs[..lt];
        } else if less + equal >= need {
            return Some((pivot, below + less));
        } else {
            need -= less + equal;
            below += less + equal;
            runs = &mut runs[gt..];
        }
    }
    None
}

impl Greedy {
    /// Fills `out` with the best plan without a block limit, or returns
    /// false when equal prices make the choice of minutes a real decision
    /// (several runs at the marginal price): the exact solver decides then.
    pub fn solve(&mut self, p: &Problem, out: &mut Vec<(u32, u32)>) -> bool {
        out.clear();
        let segs = p.segs;
        self.order.clear();
        let mut need = p.l;
        for s in segs {
            if s.forced {
                need -= s.len;
            } else {
                self.order.push((s.c, s.len));
            }
        }
        // the runs below the marginal price are charged whole; of those at
        // it, exactly one may be needed in part
        let (cut, below) = if need == 0 {
            // the forced minutes are the plan: no run below any price
            (i64::MIN, 0)
        } else {
            // None: every run is needed
            marginal(&mut self.order, need).unwrap_or((i64::MAX, u32::MAX))
        };
        let rest = need.saturating_sub(below);
        let charged = |i: usize| segs.get(i).is_some_and(|s| s.forced || s.c < cut);
        // the run at the marginal price charged in part, if one is: a
        // choice among several such runs is left to the exact solver
        let mut part = None;
        let mut at_cut = segs
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.forced && s.c == cut);
        if let Some((i, first)) = at_cut.next() {
            let others: u32 = at_cut.map(|(_, s)| s.len).sum();
            if first.len + others > rest {
                if others > 0 {
                    return false;
                }
                // a session charging now is a charged neighbour of the first run
                let left = if i == 0 { p.running } else { charged(i - 1) };
                // attach to a charged neighbour (no extra block); with both or
                // neither, the preferred direction decides
                let suffix = match (left, charged(i + 1)) {
                    (true, false) => false,
                    (false, true) => true,
                    _ => p.later,
                };
                part = Some((i, suffix));
            }
        }
        for (i, s) in segs.iter().enumerate() {
            let end = s.start + s.len;
            match part {
                Some((k, true)) if k == i => push_interval(out, end - rest, end),
                Some((k, false)) if k == i => push_interval(out, s.start, s.start + rest),
                _ if s.forced || s.c <= cut => push_interval(out, s.start, end),
                _ => {}
            }
        }
        true
    }
}
