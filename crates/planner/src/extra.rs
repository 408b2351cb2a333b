//! Opportunistic charging: beyond the target, up to the charge limit, in
//! minutes whose known price is at or below a threshold, cheapest first.
//!
//! Extra minutes never break the plan's constraints: with `max_blocks` a
//! minute is only added while the block count stays within the limit, and
//! with `min_block_minutes` only minutes that extend or join existing
//! blocks are added (a new block would start shorter than allowed).

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
        let mut blocks = chosen.len() as u32;
        let mut added = 0;
        for &(_, _, i) in &self.candidates {
            if added == more {
                break;
            }
            let i = i as usize;
            let left = i > 0 && self.on[i - 1];
            let right = i + 1 < self.on.len() && self.on[i + 1];
            let after = match (left, right) {
                (true, true) => blocks - 1,
                (false, false) => blocks + 1,
                _ => blocks,
            };
            if p.max_blocks.is_some_and(|k| after > k) {
                continue;
            }
            if p.min_block > 1 && !left && !right {
                continue;
            }
            self.on[i] = true;
            blocks = after;
            added += 1;
        }
        chosen.clear();
        for (i, &on) in self.on.iter().enumerate() {
            if on {
                push_interval(chosen, i as u32, i as u32 + 1);
            }
        }
    }
}
