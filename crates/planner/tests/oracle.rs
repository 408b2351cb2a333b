//! The planner against a brute-force oracle that tries every allowed plan
//! on small minute grids: the plan must be allowed and have the oracle's
//! best key (cost, then blocks, then lateness), exactly.

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

    fn allowed(&self, blocks: &[(u32, u32)]) -> bool {
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
        if self.max_blocks.is_some_and(|k| blocks.len() > k as usize) {
            return false;
        }
        let m = self.min_block.unwrap_or(1);
        blocks[..blocks.len().saturating_sub(1)]
            .iter()
            .all(|b| b.1 - b.0 >= m)
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
        (cost, blocks.len(), late)
    }

    fn oracle(&self) -> (i64, usize, i64) {
        (0u32..1 << self.n())
            .map(|mask| Self::blocks(mask, self.n()))
            .filter(|b| self.allowed(b))
            .map(|b| self.key(&b))
            .min()
            .expect("one block from now on is always allowed")
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
            }
        })
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let plan = planner::plan(&c.request()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(plan.feasible);
    let blocks = minutes(&plan);
    prop_assert!(c.allowed(&blocks), "plan not allowed: {:?}", blocks);
    prop_assert_eq!(c.key(&blocks), c.oracle(), "blocks {:?}", blocks);
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
    fn min_block_minutes_match_the_oracle(
        c in case(prop_oneof![Just(None), (1u32..=3).prop_map(Some)], (2u32..=4).prop_map(Some))
    ) {
        check(&c)?;
    }
}
