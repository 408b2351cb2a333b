//! The shape of the solver's state space: state numbering, residue
//! sets, where each layer's entries live, and back pointer encoding.

/// Value of an unreached state.
pub(super) const INF: i128 = i128::MAX;

/// Largest table the solver builds, in entries (back pointers are u64:
/// 256 MiB); larger requests get [`crate::PlanError::TooLarge`].
pub(super) const MAX_TABLE: usize = 1 << 25;

// Transitions over one run: skip it, take it whole, take its first or
// last `t` minutes, or (per minute) start a block of `min_block` minutes or
// the short last block.
pub(super) const NONE: u32 = 0;
pub(super) const FULL: u32 = 1;
pub(super) const PREFIX: u32 = 2;
pub(super) const SUFFIX: u32 = 3;
pub(super) const JUMP: u32 = 4;
pub(super) const FINAL: u32 = 5;
/// A stop before the plan is done, waiting `t` layers (the shortest pause)
/// before the next start is allowed.
pub(super) const PAUSE: u32 = 6;
/// A block stopping `t` minutes into its run, then the shortest pause:
/// the run is the given number of layers back (see [`encode_wait`]).
pub(super) const PREFIX_WAIT: u32 = 7;

/// A waiting state that reaches its layer later than it was created: a
/// stop followed by the shortest pause.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arrival {
    /// Whether the partial run was used.
    pub(super) f: u32,
    /// Blocks started.
    pub(super) k: u32,
    /// Minutes charged.
    pub(super) j: u32,
    /// Key so far.
    pub(super) v: i128,
    /// Back pointer.
    pub(super) code: u64,
}

/// A plan that ends with one minute exactly the shortest pause after its
/// last stop: with a latest end, that last block cannot vanish, so the
/// minute is pinned to the stop, which may itself lie inside a run (the
/// one partial run). Kept aside as a finished plan.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tail {
    /// Key of the whole plan.
    pub(super) v: i128,
    /// The state the stop was made from (`usize::MAX`: the session
    /// stopped at minute 0) and its layer (for an off state, the layer it
    /// was entered at).
    pub(super) state: usize,
    pub(super) layer: usize,
    /// Minutes charged in that state.
    pub(super) j: u32,
    /// The run the stop is in, and the minutes charged in it (0: the stop
    /// is at its start).
    pub(super) run: usize,
    pub(super) t: u32,
    /// The last minute.
    pub(super) x: u32,
}

/// A back pointer: the previous state, the transition and its length;
/// when the previous state is off, the layer it was entered at.
pub(super) fn encode(state: usize, kind: u32, t: u32) -> u64 {
    u64::from((state as u32) | (kind << 7) | (t << 10))
}

pub(super) fn from_off(code: u64, origin: u32) -> u64 {
    code | (u64::from(origin) << 32)
}

/// A [`PREFIX_WAIT`] back pointer: the run of the partial block is `back`
/// layers before the layer the waiting state arrives at. Layers and
/// origins stay below 2^16 (a horizon has at most [`crate::MAX_MINUTES`]
/// minutes).
pub(super) fn encode_wait(state: usize, t: u32, back: u32) -> u64 {
    encode(state, PREFIX_WAIT, t) | (u64::from(back) << 48)
}

/// (previous state, transition, its length, origin of an off previous
/// state, layers back of a [`PREFIX_WAIT`]).
pub(super) fn decode(code: u64) -> (usize, u32, u32, usize, usize) {
    let c = code as u32;
    (
        (c & 0x7f) as usize,
        (c >> 7) & 7,
        c >> 10,
        ((code >> 32) & 0xffff) as usize,
        (code >> 48) as usize,
    )
}

pub(super) fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Rotates a residue set modulo `g` by `d`.
pub(super) fn rot(mask: u64, d: u32, g: u32) -> u64 {
    let full = if g == 64 { u64::MAX } else { (1u64 << g) - 1 };
    let d = d % g;
    if d == 0 {
        return mask;
    }
    ((mask << d) | (mask >> (g - d))) & full
}

/// Layout of the state space of one solve.
pub(super) struct Shape {
    /// Layers: runs + 1.
    pub(super) layers: usize,
    /// Block-count values per flag (K + 1, or 1 without a limit).
    pub(super) ks: usize,
    /// States per layer.
    pub(super) states: usize,
    /// Ring of value layers (`min_block + 1`).
    pub(super) ring: usize,
    /// Residue modulus.
    pub(super) g: u32,
    /// Minutes to charge.
    pub(super) l: u32,
    /// The off state with every allowed block used (none without a limit).
    pub(super) done: usize,
    /// Entries per (flag, blocks) in the off tables (`l + 1`).
    pub(super) width: usize,
    /// Entries per residue and state (`l / g + 1`).
    pub(super) e: usize,
    /// Offset of each flag's region inside a ring slot of values.
    pub(super) foff: [usize; 2],
    /// Values per ring slot.
    pub(super) slot_size: usize,
}

/// A partial run: `t` minutes at the start (`pre`) or end (`suf`) of a
/// run, landing on residue `r`, `dq` steps of `g` further.
#[derive(Debug, Clone, Copy)]
pub(super) struct Part {
    pub(super) t: u32,
    /// The layer where the shortest pause after stopping at `t` ends.
    pub(super) wait: u32,
    pub(super) r: u32,
    pub(super) dq: u32,
    pub(super) pre: i128,
    pub(super) suf: i128,
}

/// A layer's bounds and table offsets. Values and back pointers of a
/// layer share one layout: by flag, then state, residue and `q = j / g`,
/// live entries only, so a layer's values are contiguous and small.
#[derive(Debug)]
pub(super) struct Tgt {
    pub(super) lo: u32,
    pub(super) hi: u32,
    pub(super) mask: [u64; 2],
    pub(super) vbase: [usize; 2],
    pub(super) base: [usize; 2],
    pub(super) cnt: [usize; 2],
    pub(super) slot: usize,
    pub(super) layer: usize,
    /// Rank of each live residue among its flag's live residues.
    pub(super) rank: [[u8; 64]; 2],
}

impl Tgt {
    /// Offset of state (`f`, `local`) at `j = r + q * g` within its region.
    #[inline(always)]
    pub(super) fn offset(&self, sh: &Shape, f: usize, local: usize, r: u32, q: u32) -> usize {
        let ridx = self.rank[f][r as usize] as usize;
        (local * self.cnt[f] + ridx) * sh.e + q as usize
    }
}

impl Shape {
    pub(super) fn state(&self, f: usize, k: usize, on: usize) -> usize {
        (f * self.ks + k) * 2 + on
    }

    pub(super) fn flags(&self) -> usize {
        self.states / (self.ks * 2)
    }
}

/// Packs a live entry (residue, `j / g`) of a state's list into a u32.
pub(super) fn pack(r: u32, q: u32) -> u32 {
    q | (r << 24)
}

pub(super) fn unpack(e: u32) -> (u32, u32) {
    (e >> 24, e & 0xff_ffff)
}
