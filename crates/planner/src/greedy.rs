//! The fast path: with no block limit the cheapest plan takes the cheapest
//! minutes. Runs are sorted once, not minutes, so the cost is O(s log s)
//! in the number of price runs.

use crate::problem::{push_interval, Problem};

/// Reusable buffers of the fast path.
#[derive(Debug, Default)]
pub(crate) struct Greedy {
    order: Vec<(i64, u32)>,
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
                self.order.push((s.c, i as u32));
            }
        }
        self.order.sort_unstable();
        let mut g = 0;
        while need > 0 {
            // the group of runs at the next price
            let c = self.order[g].0;
            let mut h = g;
            let mut total = 0u32;
            while h < self.order.len() && self.order[h].0 == c {
                total += segs[self.order[h].1 as usize].len;
                h += 1;
            }
            if total <= need {
                for &(_, i) in &self.order[g..h] {
                    self.taken[i as usize] = Take::All;
                }
                need -= total;
                g = h;
                continue;
            }
            if h - g > 1 {
                return false;
            }
            let i = self.order[g].1 as usize;
            let left = i > 0 && self.taken[i - 1] == Take::All;
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
