//! The fast path: with no block limit the cheapest plan takes the cheapest
//! minutes. The marginal price (the run price at which the cheapest
//! minutes add up to the plan) is found by a weighted selection over the
//! runs, expected O(s) for s runs; every run below it is charged whole.

use crate::problem::{push_interval, Problem, Seg};

/// Reusable buffers of the fast path.
#[derive(Debug, Default)]
pub(crate) struct Greedy {
    /// (price, minutes) of the runs still in the selection.
    order: Vec<(i64, u32)>,
}

/// Where the cheapest `need` minutes end among the runs: the lowest price
/// `c` such that the runs priced at most `c` hold at least `need` minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marginal {
    /// The marginal price `c`.
    price: i64,
    /// Minutes of the runs priced below it.
    below: u32,
    /// Minutes of the runs priced at it.
    at: u32,
    /// How many runs are priced at it.
    runs: u32,
}

/// The [`Marginal`] of `runs` for `need` minutes; None when all runs
/// together hold fewer. Reorders `runs`. Every run at the marginal price
/// stays in the part of `runs` a round keeps (the others are strictly
/// below or above the pivots that dropped them), so the last round counts
/// them all.
fn marginal(runs: &mut [(i64, u32)], mut need: u32) -> Option<Marginal> {
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
            return Some(Marginal {
                price: pivot,
                below: below + less,
                at: equal,
                runs: (gt - lt) as u32,
            });
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
        // the first round of the selection (see [`marginal`]) runs while
        // the runs not forced are copied: those above a pivot go to the
        // back, the others to the front
        let n = segs.len();
        let pivot = match segs {
            [] => 0,
            _ => {
                let (a, b, c) = (segs[0].c, segs[n / 2].c, segs[n - 1].c);
                a.max(b).min(a.min(b).max(c))
            }
        };
        let order = &mut self.order;
        order.clear();
        order.resize(n, (0, 0));
        let (mut front, mut back) = (0, n);
        let (mut need, mut less, mut equal, mut at_pivot) = (p.l, 0u32, 0u32, 0u32);
        for s in segs {
            if s.forced {
                need -= s.len;
            } else if s.c > pivot {
                back -= 1;
                order[back] = (s.c, s.len);
            } else {
                order[front] = (s.c, s.len);
                front += 1;
                if s.c < pivot {
                    less += s.len;
                } else {
                    equal += s.len;
                    at_pivot += 1;
                }
            }
        }
        // the runs below the marginal price are charged whole; of those at
        // it, exactly one may be needed in part
        let m = if need == 0 {
            // the forced minutes are the plan: no run below any price
            None
        } else if less >= need {
            // below the pivot: the front holds every run priced at most it
            marginal(&mut order[..front], need)
        } else if less + equal >= need {
            Some(Marginal {
                price: pivot,
                below: less,
                at: equal,
                runs: at_pivot,
            })
        } else {
            // above the pivot: every run of the front is charged
            marginal(&mut order[back..], need - less - equal).map(|m| Marginal {
                below: m.below + less + equal,
                ..m
            })
        };
        // None from the selection: every run is needed
        let m = m.or((need > 0).then_some(Marginal {
            price: i64::MAX,
            below: need,
            at: 0,
            runs: 0,
        }));
        let (cut, rest, part) = match m {
            None => (i64::MIN, 0, false),
            Some(m) => {
                let rest = need - m.below;
                // the run at the marginal price charged in part, if one
                // is: a choice among several such runs is left to the
                // exact solver
                if m.at > rest && m.runs > 1 {
                    return false;
                }
                (m.price, rest, m.at > rest)
            }
        };
        let charged = |s: &Seg| s.forced || s.c < cut;
        for (i, s) in segs.iter().enumerate() {
            let end = s.start + s.len;
            if charged(s) {
                push_interval(out, s.start, end);
            } else if s.c == cut {
                if !part {
                    push_interval(out, s.start, end);
                    continue;
                }
                // a session charging now is a charged neighbour of the
                // first run
                let left = if i == 0 {
                    p.running
                } else {
                    charged(&segs[i - 1])
                };
                // attach to a charged neighbour (no extra block); with
                // both or neither, the preferred direction decides
                let right = segs.get(i + 1).is_some_and(charged);
                let suffix = match (left, right) {
                    (true, false) => false,
                    (false, true) => true,
                    _ => p.later,
                };
                if suffix {
                    push_interval(out, end - rest, end);
                } else {
                    push_interval(out, s.start, s.start + rest);
                }
            }
        }
        true
    }
}
