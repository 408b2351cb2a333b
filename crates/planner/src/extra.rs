//! Opportunistic charging: beyond the target, up to the charge limit, in
//! minutes whose known price is at or below a threshold, cheapest first.
//!
//! Extra minutes never break the plan's constraints: with `max_blocks` a
//! minute is only added while the number of starts stays within the limit;
//! with `min_block_minutes` only minutes that extend or join existing
//! blocks are added (a new block would start shorter than allowed); with
//! `min_pause_minutes` a minute that shortens a pause is only added when
//! the pause closes or stays long enough. A session charging now counts as
//! a charged minute before the first. Minutes are only added, so the last
//! block never ends earlier.

use crate::curve::Piece;
use crate::problem::{lateness, push_interval, quantise, Problem};

/// Reusable buffers for opportunistic charging.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    on: Vec<bool>,
    candidates: Vec<(i64, i128, u32)>,
}

impl Extra {
    /// Adds up to `more` minutes priced at or below `threshold` to `chosen`.
    pub fn add(
        &mut self,
        p: &Problem,
        pieces: &[Piece],
        threshold: i64,
        more: u32,
        chosen: &mut Vec<(u32, u32)>,
    ) {
        self.on.clear();
        self.on.resize(p.n as usize, false);
        for &(a, b) in chosen.iter() {
            for i in a..b {
                self.on[i as usize] = true;
            }
        }
        self.candidates.clear();
        for piece in pieces {
            let c = quantise(piece.price);
            if piece.tentative || c > threshold {
                continue;
            }
            for i in piece.start..piece.end() {
                if !self.on[i as usize] {
                    self.candidates.push((c, lateness(p.later, p.n, i, 1), i));
                }
            }
        }
        self.candidates.sort_unstable();
        let cont = chosen.first().is_some_and(|&b| p.continues(b));
        let mut starts = chosen.len() as u32 - u32::from(cont);
        let mut added = 0;
        for &(_, _, i) in &self.candidates {
            if added == more {
                break;
            }
            let i = i as usize;
            let left = if i == 0 { p.running } else { self.on[i - 1] };
            let right = i + 1 < self.on.len() && self.on[i + 1];
            let after = match (left, right) {
                (true, true) => starts - 1,
                (false, false) => starts + 1,
                _ => starts,
            };
            if p.max_blocks.is_some_and(|k| after > k) {
                continue;
            }
            if p.min_block > 1 && !left && !right {
                continue;
            }
            if p.pause > 1 && !(left && right) && !self.pauses_ok(p, i, left, right) {
                continue;
            }
            self.on[i] = true;
            starts = after;
            added += 1;
        }
        chosen.clear();
        for (i, &on) in self.on.iter().enumerate() {
            if on {
                push_interval(chosen, i as u32, i as u32 + 1);
            }
        }
    }

    /// Whether charging minute `i` (off now, not joining two blocks)
    /// leaves every pause next to it either closed or at least `p.pause`.
    fn pauses_ok(&self, p: &Problem, i: usize, left: bool, right: bool) -> bool {
        let need = p.pause as usize;
        // the off minutes right of `i` up to the next charged one; none
        // charged further on is no pause at all
        let gap_right = || !self.on[i + 1..].iter().take(need).any(|&on| on);
        // the off minutes left of `i`, down to the previous charged one or
        // the session charging now (a charged minute before the first)
        let gap_left = || {
            let near = self.on[..i].iter().rev().take(need).any(|&on| on);
            !near && (!p.running || i >= need)
        };
        (right || gap_right()) && (left || gap_left())
    }
}
