//! The solver against the fast path on long curves.

use super::Dp;
use crate::greedy::Greedy;
use crate::problem::plan_key;
use crate::problem::{Problem, Seg};
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
        let p = Problem { segs: &segs, n, l, max_blocks: None, min_block: 1, later, running: false, pause: 0, finish: 0 };
        let (mut fast, mut exact) = (Vec::new(), Vec::new());
        let answered = Greedy::default().solve(&p, &mut fast);
        prop_assert!(Dp::default().solve(&p, &[], &mut exact).unwrap());
        let minutes: u32 = exact.iter().map(|b| b.1 - b.0).sum();
        prop_assert_eq!(minutes, l);
        if answered {
            prop_assert_eq!(plan_key(&p, &fast), plan_key(&p, &exact));
        }
        // a block limit can only make the key worse or equal
        let limited = Problem { max_blocks: Some(2), ..p };
        let mut two = Vec::new();
        prop_assert!(Dp::default().solve(&limited, &fast, &mut two).unwrap());
        prop_assert!(two.len() <= 2);
        prop_assert!(plan_key(&p, &two) >= plan_key(&p, &exact));
    }
}

/// Cuts `segs` for a latest end at `finish` the way the planner does: at
/// `finish`, then the last minute of every run ending at `finish` or later
/// and the first minute of those starting there or later.
fn cut_for_finish(segs: &[Seg], finish: u32) -> Vec<Seg> {
    let mut out = Vec::new();
    let split = |s: &Seg, cuts: &[u32], out: &mut Vec<Seg>| {
        let end = s.start + s.len;
        let mut at = s.start;
        for &c in cuts {
            if at < c && c < end {
                out.push(Seg {
                    start: at,
                    len: c - at,
                    ..*s
                });
                at = c;
            }
        }
        out.push(Seg {
            start: at,
            len: end - at,
            ..*s
        });
    };
    let mut halves = Vec::new();
    for s in segs {
        split(s, &[finish], &mut halves);
    }
    for s in &halves {
        let end = s.start + s.len;
        if end < finish {
            out.push(*s);
        } else if s.start < finish {
            split(s, &[end - 1], &mut out);
        } else {
            split(s, &[s.start + 1, end - 1], &mut out);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// With a shortest pause the programme runs over price runs cut a pause
    /// from every run edge; minute by minute it tries every edge. Both must
    /// find the same key, on long curves where the pause binds.
    #[test]
    fn runs_cut_at_the_pause_agree_with_minutes(
        (segs, n, forced) in segs(),
        frac in 0.0f64..1.0,
        later in any::<bool>(),
        running in any::<bool>(),
        pause in 2u32..70,
        max_blocks in prop_oneof![Just(None), (1u32..5).prop_map(Some)],
        finish in prop_oneof![Just(None), (0u32..120).prop_map(Some)],
    ) {
        let l = forced.max((f64::from(n) * frac) as u32).min(n);
        prop_assume!(l > 0);
        let finish = finish.map_or(0, |f| n.saturating_sub(f));
        let segs = if finish > 0 { cut_for_finish(&segs, finish) } else { segs };
        let p = Problem {
            segs: &segs, n, l, max_blocks, min_block: 1, later, running, pause, finish,
        };
        let (mut runs, mut minutes) = (Vec::new(), Vec::new());
        let found = Dp::default().solve(&p, &[], &mut runs).unwrap();
        let reference = Dp { by_minute: true, ..Dp::default() };
        prop_assert_eq!(found, { let mut d = reference; d.solve(&p, &[], &mut minutes).unwrap() });
        if found {
            prop_assert!(p.allows(&runs), "{:?}", runs);
            let total: u32 = runs.iter().map(|b| b.1 - b.0).sum();
            prop_assert_eq!(total, l);
            prop_assert_eq!(plan_key(&p, &runs), plan_key(&p, &minutes), "{:?} vs {:?}", runs, minutes);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The repaired plan that bounds the search is an allowed plan of `l`
    /// minutes costing what the repair says, never cheaper than the
    /// optimum; and the programme bounded by it, from the relaxed optimum
    /// as the planner hands it over, finds the key it finds without.
    #[test]
    fn repaired_plans_are_allowed_and_bound_the_optimum(
        (segs, n, forced) in segs(),
        frac in 0.0f64..1.0,
        later in any::<bool>(),
        running in any::<bool>(),
        pause in prop_oneof![Just(0u32), 2u32..70],
        max_blocks in prop_oneof![Just(None), (1u32..5).prop_map(Some)],
        finish in prop_oneof![Just(None), (0u32..120).prop_map(Some)],
    ) {
        let l = forced.max((f64::from(n) * frac) as u32).min(n);
        prop_assume!(l > 0);
        let finish = finish.map_or(0, |f| n.saturating_sub(f));
        let segs = if finish > 0 { cut_for_finish(&segs, finish) } else { segs };
        let p = Problem {
            segs: &segs, n, l, max_blocks, min_block: 1, later, running, pause, finish,
        };
        let relaxed = Problem { max_blocks: None, pause: 0, finish: 0, ..p };
        let mut hint = Vec::new();
        if !Greedy::default().solve(&relaxed, &mut hint) {
            prop_assert!(Dp::default().solve(&relaxed, &[], &mut hint).unwrap());
        }
        let mut work = super::repair::Work::default();
        let repaired = super::repair::repair(&p, &hint, &mut work);
        let (mut plain, mut hinted) = (Vec::new(), Vec::new());
        let found = Dp::default().solve(&p, &[], &mut plain).unwrap();
        prop_assert_eq!(found, Dp::default().solve(&p, &hint, &mut hinted).unwrap());
        if let Some(cost) = repaired {
            let plan = work.plan(&p);
            prop_assert!(p.allows(plan), "{:?}", plan);
            prop_assert_eq!(plan.iter().map(|b| b.1 - b.0).sum::<u32>(), l);
            prop_assert!(plan.last().is_some_and(|b| b.1 <= n));
            let forced_ok = forced == 0 || plan.first().is_some_and(|b| b.0 == 0 && b.1 >= forced);
            prop_assert!(forced_ok, "{:?}", plan);
            prop_assert_eq!(plan_key(&p, plan) >> 64, cost);
            prop_assert!(found);
            prop_assert!(plan_key(&p, &plain) >> 64 <= cost);
        }
        if found {
            prop_assert_eq!(plan_key(&p, &plain), plan_key(&p, &hinted), "{:?} vs {:?}", plain, hinted);
        }
    }
}
