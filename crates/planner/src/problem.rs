//! The optimisation problem on the minute grid, shared by the exact
//! solvers: which minutes of `[0, n)` to charge.
//!
//! Plans are compared by a single integer key, lexicographically
//! (cost, blocks, lateness), so ties are decided exactly, never by float
//! rounding noise. Costs are in units of 1e-9 per kWh-minute of power:
//! the power is the same for every minute, so it does not change the
//! order of plans.

/// Prices are compared at this resolution per kWh.
pub(crate) const PRICE_SCALE: f64 = 1e9;

/// What one block start adds to a key: below any cost difference, above
/// any lateness difference (which stays below 2^40 for 7-day horizons).
pub(crate) const BLOCK: i128 = 1 << 40;

/// A run of minutes `[start, start + len)` with one price for the solvers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seg {
    /// First minute (offset from the first planned minute).
    pub start: u32,
    /// Number of minutes.
    pub len: u32,
    /// Price per minute, quantised (see [`quantise`]).
    pub c: i64,
    /// Charged whatever the price (the part up to `min_soc_percent`).
    pub forced: bool,
}

/// The problem the solvers answer: choose exactly `l` minutes of `[0, n)`,
/// all forced minutes included, with at most `max_blocks` starts, every
/// block but the last at least `min_block` long, no pause shorter than
/// `pause`, the last block ending at `finish` or later, with the smallest
/// key.
///
/// With `running`, a block from minute 0 continues the session charging
/// now: it is no start (no block in the key, not counted, no minimum
/// length), and a plan that does not charge minute 0 stops the session
/// there, so its first block is a restart after a pause from minute 0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Problem<'a> {
    /// Consecutive runs tiling `[0, n)`.
    pub segs: &'a [Seg],
    /// Minutes in the horizon.
    pub n: u32,
    /// Minutes to charge.
    pub l: u32,
    /// The most blocks, or no limit.
    pub max_blocks: Option<u32>,
    /// Shortest block but the last (1 = no constraint).
    pub min_block: u32,
    /// Prefer later plans on ties (else earlier).
    pub later: bool,
    /// The vehicle charges at minute 0 already.
    pub running: bool,
    /// Shortest pause between blocks (0 or 1 = no constraint).
    pub pause: u32,
    /// The earliest end of the last block (0 = no constraint).
    pub finish: u32,
}

impl Problem<'_> {
    /// Whether block `b`, the first of a plan, continues the running session.
    pub fn continues(&self, b: (u32, u32)) -> bool {
        self.running && b.0 == 0
    }

    /// Whether a plan respects every constraint but the minutes to charge:
    /// starts, shortest block, shortest pause and the latest end.
    pub fn allows(&self, blocks: &[(u32, u32)]) -> bool {
        let cont = blocks.first().is_some_and(|&b| self.continues(b));
        let starts = blocks.len() - usize::from(cont);
        if self.max_blocks.is_some_and(|k| starts > k as usize) {
            return false;
        }
        let but_last = blocks.len().saturating_sub(1);
        let skip = usize::from(cont);
        if !blocks[..but_last]
            .iter()
            .skip(skip)
            .all(|&(a, b)| b - a >= self.min_block)
        {
            return false;
        }
        if self.pause > 1 {
            // a session stopped at minute 0 pauses from there
            let stopped = self.running && !cont;
            if stopped && blocks.first().is_some_and(|b| b.0 < self.pause) {
                return false;
            }
            if blocks.windows(2).any(|w| w[1].0 - w[0].1 < self.pause) {
                return false;
            }
        }
        blocks.last().is_none_or(|b| b.1 >= self.finish)
    }
}

/// A price per kWh as the integer the solvers compare.
pub(crate) fn quantise(price: f64) -> i64 {
    // rounds half away from zero like f64::round, without a libm call;
    // validated prices keep this far inside i64
    let x = price * PRICE_SCALE;
    (x + if x >= 0.0 { 0.5 } else { -0.5 }) as i64
}

/// Lateness weight of minutes `[a, a + t)`: smaller is better, so later
/// minutes weigh less when `later`, earlier ones when not.
pub(crate) fn lateness(later: bool, n: u32, a: u32, t: u32) -> i128 {
    let (a, t, n) = (i128::from(a), i128::from(t), i128::from(n));
    // sum of i over [a, a + t)
    let sum_i = (2 * a + t - 1) * t / 2;
    if later {
        t * n - sum_i
    } else {
        sum_i
    }
}

/// Key of charging minutes `[a, a + t)` at price `c`.
pub(crate) fn run_key(c: i64, later: bool, n: u32, a: u32, t: u32) -> i128 {
    ((i128::from(c) * i128::from(t)) << 64) + lateness(later, n, a, t)
}

/// Pushes `[a, b)` onto sorted `out`, joining it to the last interval when
/// they touch.
pub(crate) fn push_interval(out: &mut Vec<(u32, u32)>, a: u32, b: u32) {
    if a >= b {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last.1 == a {
            last.1 = b;
            return;
        }
    }
    out.push((a, b));
}

/// The key of a set of blocks: what the solvers minimise.
#[cfg(test)]
pub(crate) fn plan_key(p: &Problem, blocks: &[(u32, u32)]) -> i128 {
    let mut key = 0i128;
    for (i, &(a, b)) in blocks.iter().enumerate() {
        if !(i == 0 && p.continues((a, b))) {
            key += BLOCK;
        }
        for s in p.segs {
            let lo = a.max(s.start);
            let hi = b.min(s.start + s.len);
            if lo < hi {
                key += run_key(s.c, p.later, p.n, lo, hi - lo);
            }
        }
    }
    key
}
