//! The planner against a brute-force oracle that tries every allowed plan
//! on small minute grids: the plan must be allowed and have the oracle's
//! best key (cost, then starts, then lateness), exactly.
//!
//! The oracle's rules are written from the request's documentation, not
//! from the solvers: with `charging_now` a block from the planning start
//! continues the session (no start, no minimum length) and a plan that does
//! not charge then stops the session, so its first block is a restart after
//! at least `min_pause_minutes`; between blocks no pause is shorter than
//! that; the last block ends `finish_by_departure_minutes` or less before
//! the deadline, unless no plan can, and then the plan drops that rule and
//! says so.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use planner::{Plan, PlanRequest, PriceSlot, TieBreak};
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn at(m: u32) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(i64::from(m))
}

/// A small problem: per-minute prices in cents (None = unknown).
#[derive(Debug, Clone)]
struct Case {
    cents: Vec<Option<i64>>,
    l: u32,
    forced: u32,
    max_blocks: Option<u32>,
    min_block: Option<u32>,
    later: bool,
    running: bool,
    pause: Option<u32>,
    finish: Option<u32>,
}

impl Case {
    fn n(&self) -> u32 {
        self.cents.len() as u32
    }

    /// Unknown minutes cost the highest known price (no history given).
    fn prices(&self) -> Vec<i64> {
        let highest = self.cents.iter().flatten().max().copied().unwrap_or(0);
        self.cents.iter().map(|c| c.unwrap_or(highest)).collect()
    }

    fn request(&self) -> PlanRequest {
        // runs of equal known prices become slots of up to 3 minutes
        let mut prices = Vec::new();
        let mut i = 0;
        while i < self.cents.len() {
            let Some(c) = self.cents[i] else {
                i += 1;
                continue;
            };
            let mut j = i + 1;
            while j < self.cents.len() && j - i < 3 && self.cents[j] == Some(c) {
                j += 1;
            }
            prices.push(PriceSlot {
                start: at(i as u32),
                end: at(j as u32),
                price_per_kwh: c as f64 / 100.0,
            });
            i = j;
        }
        // 60 kW: one minute is one kWh; 100 kWh battery: one percent is a minute
        PlanRequest {
            now: t0(),
            deadline: at(self.n()),
            battery_kwh: 100.0,
            soc_percent: 0.0,
            target_percent: f64::from(self.l),
            max_power_kw: 60.0,
            efficiency: 1.0,
            min_soc_percent: f64::from(self.forced),
            max_blocks: self.max_blocks,
            min_block_minutes: self.min_block,
            charge_limit_percent: None,
            opportunistic_price: None,
            tie_break: if self.later {
                TieBreak::Later
            } else {
                TieBreak::Earlier
            },
            charging_now: self.running,
            min_pause_minutes: self.pause,
            finish_by_departure_minutes: self.finish,
            prices,
        }
    }

    fn blocks(mask: u32, n: u32) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        for i in 0..n {
            if mask >> i & 1 == 1 {
                match out.last_mut() {
                    Some(last) if last.1 == i => last.1 = i + 1,
                    _ => out.push((i, i + 1)),
                }
            }
        }
        out
    }

    /// Whether the first block continues the session charging now.
    fn continues(&self, blocks: &[(u32, u32)]) -> bool {
        self.running && blocks.first().is_some_and(|b| b.0 == 0)
    }

    fn allowed(&self, blocks: &[(u32, u32)], finish: bool) -> bool {
        let minutes: u32 = blocks.iter().map(|b| b.1 - b.0).sum();
        if minutes != self.l {
            return false;
        }
        if self.forced > 0
            && !(blocks
                .first()
                .is_some_and(|b| b.0 == 0 && b.1 >= self.forced))
        {
            return false;
        }
        let cont = self.continues(blocks);
        let starts = blocks.len() - usize::from(cont);
        if self.max_blocks.is_some_and(|k| starts > k as usize) {
            return false;
        }
        let m = self.min_block.unwrap_or(1);
        for (i, b) in blocks.iter().enumerate() {
            let exempt = i + 1 == blocks.len() || (i == 0 && cont);
            if !exempt && b.1 - b.0 < m {
                return false;
            }
        }
        let p = self.pause.unwrap_or(0);
        for w in blocks.windows(2) {
            if w[1].0 - w[0].1 < p {
                return false;
            }
        }
        if self.running && !cont && blocks.first().is_some_and(|b| b.0 < p) {
            return false;
        }
        if let (true, Some(f)) = (finish, self.finish) {
            let earliest = self.n().saturating_sub(f);
            if blocks.last().is_some_and(|b| b.1 < earliest) {
                return false;
            }
        }
        true
    }

    fn key(&self, blocks: &[(u32, u32)]) -> (i64, usize, i64) {
        let prices = self.prices();
        let n = i64::from(self.n());
        let mut cost = 0;
        let mut late = 0;
        for &(a, b) in blocks {
            for i in a..b {
                cost += prices[i as usize];
                late += if self.later {
                    n - i64::from(i)
                } else {
                    i64::from(i)
                };
            }
        }
        let starts = blocks.len() - usize::from(self.continues(blocks));
        (cost, starts, late)
    }

    /// The best key, and whether the latest end had to be dropped.
    fn oracle(&self) -> ((i64, usize, i64), bool) {
        let best = |finish: bool| {
            (0u32..1 << self.n())
                .map(|mask| Self::blocks(mask, self.n()))
                .filter(|b| self.allowed(b, finish))
                .map(|b| self.key(&b))
                .min()
        };
        match best(true) {
            Some(k) => (k, false),
            None => (
                best(false).expect("one block from now on is always allowed"),
                true,
            ),
        }
    }
}

fn minutes(plan: &Plan) -> Vec<(u32, u32)> {
    plan.blocks
        .iter()
        .map(|b| {
            (
                (b.start - t0()).num_minutes() as u32,
                (b.end - t0()).num_minutes() as u32,
            )
        })
        .collect()
}

fn case(
    max_blocks: impl Strategy<Value = Option<u32>>,
    min_block: impl Strategy<Value = Option<u32>>,
) -> impl Strategy<Value = Case> {
    (1usize..=12, max_blocks, min_block, any::<bool>())
        .prop_flat_map(|(n, max_blocks, min_block, later)| {
            (
                // few distinct prices, so ties are common; some unknown
                proptest::collection::vec(
                    prop_oneof![9 => (-2i64..4).prop_map(Some), 1 => Just(None)],
                    n,
                ),
                0..=n as u32,
                0..=n as u32,
                Just(max_blocks),
                Just(min_block),
                Just(later),
            )
        })
        .prop_map(|(mut cents, l, forced, max_blocks, min_block, later)| {
            if cents.iter().all(Option::is_none) {
                cents[0] = Some(1);
            }
            Case {
                cents,
                l,
                forced: forced.min(l),
                max_blocks,
                min_block,
                later,
                running: false,
                pause: None,
                finish: None,
            }
        })
}

/// Quarter-hour-like curves in miniature: slots of `s` minutes, the
/// horizon starting inside a slot, so runs are long and partial runs and
/// residues matter.
fn slotted(max_blocks: impl Strategy<Value = Option<u32>>) -> impl Strategy<Value = Case> {
    (1usize..=14, 2usize..=5, max_blocks, any::<bool>())
        .prop_flat_map(|(n, s, max_blocks, later)| {
            (
                proptest::collection::vec(
                    prop_oneof![9 => (-2i64..6).prop_map(Some), 1 => Just(None)],
                    n / s + 2,
                ),
                0..s,
                Just(n),
                Just(s),
                0..=n as u32,
                0..=2u32,
                Just(max_blocks),
                Just(later),
            )
        })
        .prop_map(|(slots, offset, n, s, l, forced, max_blocks, later)| {
            let mut cents: Vec<Option<i64>> = (0..n).map(|i| slots[(i + offset) / s]).collect();
            if cents.iter().all(Option::is_none) {
                cents[0] = Some(1);
            }
            Case {
                cents,
                l,
                forced: forced.min(l),
                max_blocks,
                min_block: None,
                later,
                running: false,
                pause: None,
                finish: None,
            }
        })
}

/// Adds the session, pause and latest-end rules to cases of `base`.
fn with_rules(
    base: impl Strategy<Value = Case>,
    pause: impl Strategy<Value = Option<u32>>,
) -> impl Strategy<Value = Case> {
    (
        base,
        any::<bool>(),
        pause,
        prop_oneof![Just(None), (0u32..=13).prop_map(Some)],
    )
        .prop_map(|(c, running, pause, finish)| Case {
            running,
            pause,
            finish,
            ..c
        })
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let plan = planner::plan(&c.request()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(plan.feasible);
    let blocks = minutes(&plan);
    let (best, dropped) = c.oracle();
    prop_assert!(
        c.allowed(&blocks, !dropped),
        "plan not allowed: {:?}",
        blocks
    );
    prop_assert_eq!(c.key(&blocks), best, "blocks {:?}", blocks);
    let warned = plan
        .warnings
        .iter()
        .any(|w| w.contains("planned without finish_by_departure_minutes"));
    prop_assert_eq!(warned, dropped && c.l > 0, "warnings {:?}", plan.warnings);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn unlimited_blocks_match_the_oracle(c in case(Just(None), Just(None))) {
        check(&c)?;
    }

    #[test]
    fn one_to_three_blocks_match_the_oracle(c in case((1u32..=3).prop_map(Some), Just(None))) {
        check(&c)?;
    }

    #[test]
    fn slotted_curves_match_the_oracle(c in slotted(prop_oneof![Just(None), (1u32..=3).prop_map(Some)])) {
        check(&c)?;
    }

    #[test]
    fn session_pause_and_latest_end_match_the_oracle(
        c in with_rules(
            case(prop_oneof![Just(None), (1u32..=3).prop_map(Some)], prop_oneof![Just(None), (2u32..=3).prop_map(Some)]),
            prop_oneof![Just(None), (0u32..=5).prop_map(Some)],
        )
    ) {
        check(&c)?;
    }

    #[test]
    fn slotted_curves_with_a_session_and_a_latest_end_match_the_oracle(
        c in with_rules(
            slotted(prop_oneof![Just(None), (1u32..=3).prop_map(Some)]),
            prop_oneof![Just(None), (0u32..=5).prop_map(Some)],
        )
    ) {
        check(&c)?;
    }

    #[test]
    fn min_block_minutes_match_the_oracle(
        c in case(prop_oneof![Just(None), (1u32..=3).prop_map(Some)], (2u32..=4).prop_map(Some))
    ) {
        check(&c)?;
    }
}
