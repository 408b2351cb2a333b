//! The fast path: with no block limit the cheapest plan takes the cheapest
//! minutes. Runs, not minutes, are ranked by price, and only as many as
//! the plan needs: O(s + k log s) for s runs of which k are charged.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::problem::{push_interval, Problem};

/// Reusable buffers of the fast path.
#[derive(Debug, Default)]
pub(crate) struct Greedy {
    order: Vec<Reverse<(i64, u32)>>,
    group: Vec<u32>,
    taken: Vec<Take>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    None,
    All,
    Prefix(u32),
    Suffix(u32),
}

impl Greedy {
    /// Fills `out` with the best plan without a block limit, or returns
    /// false when equal prices make the choice of minutes a real decision
    /// (several runs at the marginal price): the exact solver decides then.
    pub fn solve(&mut self, p: &Problem, out: &mut Vec<(u32, u32)>) -> bool {
        out.clear();
        let segs = p.segs;
        self.taken.clear();
        self.taken.resize(segs.len(), Take::None);
        self.order.clear();
        let mut need = p.l;
        for (i, s) in segs.iter().enumerate() {
            if s.forced {
                self.taken[i] = Take::All;
                need -= s.len;
            } else {
                self.order.push(Reverse((s.c, i as u32)));
            }
        }
        // a heap yields the cheapest runs without sorting them all: plans
        // usually need a few dozen of a few hundred
        let mut heap = BinaryHeap::from(std::mem::take(&mut self.order));
        let mut answered = true;
        while need > 0 {
            // the group of runs at the next price
            let Some(Reverse((c, first))) = heap.pop() else {
                break;
            };
            self.group.clear();
            self.group.push(first);
            let mut total = segs[first as usize].len;
            while let Some(&Reverse((d, i))) = heap.peek() {
                if d != c {
                    break;
                }
                heap.pop();
                self.group.push(i);
                total += segs[i as usize].len;
            }
            if total <= need {
                for &i in &self.group {
                    self.taken[i as usize] = Take::All;
                }
                need -= total;
                continue;
            }
            if self.group.len() > 1 {
                answered = false;
                break;
            }
            let i = first as usize;
            // a session charging now is a charged neighbour of the first run
            let left = if i == 0 {
                p.running
            } else {
                self.taken[i - 1] == Take::All
            };
            let right = i + 1 < segs.len() && self.taken[i + 1] == Take::All;
            // attach to a charged neighbour (no extra block); with both or
            // neither, the preferred direction decides
            let suffix = match (left, right) {
                (true, false) => false,
                (false, true) => true,
                _ => p.later,
            };
            self.taken[i] = if suffix {
                Take::Suffix(need)
            } else {
                Take::Prefix(need)
            };
            need = 0;
        }
        let mut order = heap.into_vec();
        order.clear();
        self.order = order;
        if !answered {
            return false;
        }
        for (s, t) in segs.iter().zip(&self.taken) {
            let end = s.start + s.len;
            match *t {
                Take::None => {}
                Take::All => push_interval(out, s.start, end),
                Take::Prefix(k) => push_interval(out, s.start, s.start + k),
                Take::Suffix(k) => push_interval(out, end - k, end),
            }
        }
        true
    }
}
