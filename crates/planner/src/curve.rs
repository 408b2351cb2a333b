//! The price of every minute of the horizon, forecast where unknown.
//!
//! Unknown time is never free and never forbidden: it is priced with the
//! same minute 7 days earlier, else 24 hours earlier, else the highest known
//! price, and marked tentative.

/// Minutes in a day and in a week.
const DAY: i64 = 24 * 60;
const WEEK: i64 = 7 * DAY;

/// A known price slot in epoch minutes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub start: i64,
    pub end: i64,
    pub price: f64,
}

/// A run of horizon minutes `[start, start + len)` (offsets from the first
/// planned minute) with one price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Piece {
    pub start: u32,
    pub len: u32,
    pub price: f64,
    pub tentative: bool,
}

impl Piece {
    pub fn end(&self) -> u32 {
        self.start + self.len
    }
}

/// Where a forecast price came from, for the warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    WeekBefore,
    DayBefore,
    Highest,
}

/// A stretch of the horizon without known prices (epoch minutes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gap {
    pub start: i64,
    pub end: i64,
    /// The sources used inside the gap, as a bit set of `Source`.
    pub sources: u8,
}

fn source_bit(s: Source) -> u8 {
    match s {
        Source::WeekBefore => 1,
        Source::DayBefore => 2,
        Source::Highest => 4,
    }
}

/// Calls `f(a, b, price)` for consecutive pieces covering `[u, v)`, with
/// `None` where no slot is known.
fn cover(slots: &[Slot], u: i64, v: i64, f: &mut impl FnMut(i64, i64, Option<f64>)) {
    let mut i = slots.partition_point(|s| s.end <= u);
    let mut pos = u;
    while pos < v {
        match slots.get(i) {
            Some(s) if s.start < v => {
                if s.start > pos {
                    f(pos, s.start, None);
                    pos = s.start;
                }
                let e = s.end.min(v);
                f(pos, e, Some(s.price));
                pos = e;
                i += 1;
            }
            _ => {
                f(pos, v, None);
                pos = v;
            }
        }
    }
}

/// Builds the pieces of the horizon `[t0, t0 + n)` (epoch minutes).
pub(crate) struct CurveBuilder<'a> {
    slots: &'a [Slot],
    t0: i64,
    /// The highest known price, found when a gap first needs it.
    highest: Option<f64>,
    pieces: &'a mut Vec<Piece>,
    gaps: &'a mut Vec<Gap>,
}

impl<'a> CurveBuilder<'a> {
    pub fn build(
        slots: &'a [Slot],
        t0: i64,
        n: u32,
        pieces: &'a mut Vec<Piece>,
        gaps: &'a mut Vec<Gap>,
    ) {
        pieces.clear();
        gaps.clear();
        let mut b = CurveBuilder {
            slots,
            t0,
            highest: None,
            pieces,
            gaps,
        };
        b.fill(t0, t0 + i64::from(n));
    }

    fn push(&mut self, a: i64, b: i64, price: f64, tentative: bool) {
        let start = (a - self.t0) as u32;
        let len = (b - a) as u32;
        if len == 0 {
            return;
        }
        if let Some(last) = self.pieces.last_mut() {
            if last.end() == start
                && last.tentative == tentative
                && last.price.to_bits() == price.to_bits()
            {
                last.len += len;
                return;
            }
        }
        self.pieces.push(Piece {
            start,
            len,
            price,
            tentative,
        });
    }

    /// Covers `[u, v)` as [`cover`] does, with a tight loop over known
    /// slots that follow one another (the usual curve: one piece per
    /// slot, or one longer piece per run of equal prices).
    fn fill(&mut self, u: i64, v: i64) {
        let slots = self.slots;
        let mut i = slots.partition_point(|s| s.end <= u);
        let mut pos = u;
        self.pieces.reserve(slots.len() - i);
        while pos < v {
            // slots with `end > pos` from `i` on: known from `pos` while
            // the next one starts there
            while let Some(s) = slots.get(i).filter(|s| s.start <= pos && pos < v) {
                let e = s.end.min(v);
                let start = (pos - self.t0) as u32;
                let len = (e - pos) as u32;
                match self.pieces.last_mut() {
                    // the pieces so far tile [t0, pos): the last ends here
                    Some(last) if !last.tentative && last.price.to_bits() == s.price.to_bits() => {
                        last.len += len;
                    }
                    _ => self.pieces.push(Piece {
                        start,
                        len,
                        price: s.price,
                        tentative: false,
                    }),
                }
                pos = e;
                i += 1;
            }
            if pos >= v {
                break;
            }
            let end = slots.get(i).map_or(v, |s| s.start.min(v));
            self.gaps.push(Gap {
                start: pos,
                end,
                sources: 0,
            });
            self.forecast(pos, end, 0);
            pos = end;
        }
    }

    /// Prices `[a, b)` from history: level 0 looks a week back, level 1 a
    /// day back, level 2 takes the highest known price.
    fn forecast(&mut self, a: i64, b: i64, level: u8) {
        let (shift, source) = match level {
            0 => (WEEK, Source::WeekBefore),
            1 => (DAY, Source::DayBefore),
            _ => {
                self.mark(Source::Highest);
                let slots = self.slots;
                let highest = *self.highest.get_or_insert_with(|| {
                    slots
                        .iter()
                        .map(|s| s.price)
                        .fold(f64::NEG_INFINITY, f64::max)
                });
                self.push(a, b, highest, true);
                return;
            }
        };
        let slots = self.slots;
        cover(slots, a - shift, b - shift, &mut |x, y, p| match p {
            Some(p) => {
                self.mark(source);
                self.push(x + shift, y + shift, p, true);
            }
            None => self.forecast(x + shift, y + shift, level + 1),
        });
    }

    fn mark(&mut self, s: Source) {
        if let Some(g) = self.gaps.last_mut() {
            g.sources |= source_bit(s);
        }
    }
}

/// Human-readable list of the sources recorded in a gap.
pub(crate) fn describe_sources(bits: u8) -> String {
    let mut parts = Vec::new();
    if bits & 1 != 0 {
        parts.push("the same time 7 days earlier");
    }
    if bits & 2 != 0 {
        parts.push("the same time 24 hours earlier");
    }
    if bits & 4 != 0 {
        parts.push("the highest known price");
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(start: i64, end: i64, price: f64) -> Slot {
        Slot { start, end, price }
    }

    #[test]
    fn gaps_are_forecast_from_a_week_then_a_day_then_the_highest_price() {
        // Known: a week before minute 0..10, a day before 10..20, and 0..5 now.
        let slots = [
            slot(-WEEK, -WEEK + 10, 1.0),
            slot(-DAY + 10, -DAY + 20, 2.0),
            slot(0, 5, 3.0),
        ];
        let (mut pieces, mut gaps) = (Vec::new(), Vec::new());
        CurveBuilder::build(&slots, 0, 30, &mut pieces, &mut gaps);
        let got: Vec<(u32, u32, f64, bool)> = pieces
            .iter()
            .map(|p| (p.start, p.len, p.price, p.tentative))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 5, 3.0, false),
                (5, 5, 1.0, true),
                (10, 10, 2.0, true),
                (20, 10, 3.0, true),
            ]
        );
        assert_eq!(gaps.len(), 1);
        assert_eq!((gaps[0].start, gaps[0].end, gaps[0].sources), (5, 30, 7));
    }
}
