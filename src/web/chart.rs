//! The status page's chart: the price curve as an inline SVG step line,
//! a vehicle's planned blocks as shaded bands, and a "now" line. Plain
//! SVG text, no script, no external reference, so the page stays one
//! self-contained document that works with JavaScript off.

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

use super::page::esc;
use crate::prices::PriceCurve;

/// The drawing's width in SVG units (it scales to the page's width).
const WIDTH: f64 = 600.0;
/// The plot's height.
const HEIGHT: f64 = 150.0;
/// Room on the left for the price labels.
const LEFT: f64 = 44.0;
/// Room at the bottom for the hour labels.
const BOTTOM: f64 = 18.0;
/// Room at the top for the "now" label.
const TOP: f64 = 12.0;
/// The longest span a chart shows: a day-ahead curve reaches at most
/// about a day and a half ahead, and a longer one would be unreadable on a
/// phone.
pub const MAX_SPAN: TimeDelta = TimeDelta::hours(48);

/// One planned block, as the chart shades it.
#[derive(Debug, Clone, Copy)]
pub struct Band {
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
}

/// The chart of `curve` over `[from, to)` (at most [`MAX_SPAN`]), with
/// `bands` shaded and a line at `now`; hours are labelled in `tz`. `None`
/// when no price falls in the span.
pub fn svg(
    curve: &PriceCurve,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    bands: &[Band],
    tz: Tz,
    label: &str,
) -> Option<String> {
    let to = to.min(from + MAX_SPAN);
    if to <= from {
        return None;
    }
    let slots: Vec<_> = curve
        .from(from)
        .iter()
        .take_while(|s| s.start < to)
        .collect();
    if slots.is_empty() {
        return None;
    }
    let (lo, hi) = slots
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s.price), hi.max(s.price))
        });
    // From zero, or from the lowest price when some are negative.
    let floor = lo.min(0.0);
    let ceil = if hi > floor { hi } else { floor + 1.0 };
    let span_s = (to - from).num_seconds() as f64;
    let x = |t: DateTime<Utc>| {
        let t = t.clamp(from, to);
        LEFT + (WIDTH - LEFT) * (t - from).num_seconds() as f64 / span_s
    };
    let y = |p: f64| TOP + HEIGHT * (1.0 - (p - floor) / (ceil - floor));
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {h}\" role=\"img\" aria-label=\"{label}\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{label}</title>",
        h = TOP + HEIGHT + BOTTOM,
        label = esc(label),
    );
    for b in bands.iter().filter(|b| b.end > from && b.start < to) {
        let (x0, x1) = (x(b.start), x(b.end));
        let _ = write!(
            out,
            "<rect class=\"block\" x=\"{x0:.1}\" y=\"{TOP}\" width=\"{w:.1}\" height=\"{HEIGHT}\" \
             data-start=\"{s}\" data-end=\"{e}\"><title>charge {ls}–{le}</title></rect>",
            w = (x1 - x0).max(1.0),
            s = b.start.to_rfc3339(),
            e = b.end.to_rfc3339(),
            ls = b.start.with_timezone(&tz).format("%H:%M"),
            le = b.end.with_timezone(&tz).format("%H:%M"),
        );
    }
    // The price as a step line; a gap in the curve is a gap in the line.
    out.push_str("<path class=\"price\" d=\"");
    let mut prev_end: Option<DateTime<Utc>> = None;
    for s in &slots {
        let (x0, x1, yy) = (x(s.start), x(s.end), y(s.price));
        if prev_end == Some(s.start) {
            let _ = write!(out, "V{yy:.1}H{x1:.1}");
        } else {
            let _ = write!(out, "M{x0:.1} {yy:.1}H{x1:.1}");
        }
        prev_end = Some(s.end);
    }
    out.push_str("\"/>");
    // The axis: the price range on the left, local hours at the bottom.
    let base = TOP + HEIGHT;
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\"/>\
         <text class=\"tick\" x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\">{hi:.2}</text>\
         <text class=\"tick\" x=\"{lx}\" y=\"{base}\" text-anchor=\"end\">{floor:.2}</text>",
        lx = LEFT - 3.0,
        ty = y(hi) + 4.0,
    );
    let step = if to - from > TimeDelta::hours(24) {
        6
    } else {
        3
    };
    let local = from.with_timezone(&tz);
    let mut t = from
        - TimeDelta::minutes(i64::from(local.minute()))
        - TimeDelta::seconds(i64::from(local.second()));
    while t <= to {
        let h = t.with_timezone(&tz).hour();
        if t >= from && h.is_multiple_of(step) {
            let xx = x(t);
            let _ = write!(
                out,
                "<line class=\"grid\" x1=\"{xx:.1}\" y1=\"{TOP}\" x2=\"{xx:.1}\" y2=\"{base}\"/>\
                 <text class=\"tick\" x=\"{xx:.1}\" y=\"{ly}\" text-anchor=\"middle\">{h:02}:00</text>",
                ly = base + BOTTOM - 4.0,
            );
        }
        t += TimeDelta::hours(1);
    }
    if now >= from && now <= to {
        let xn = x(now);
        let _ = write!(
            out,
            "<line class=\"now\" x1=\"{xn:.1}\" y1=\"{TOP}\" x2=\"{xn:.1}\" y2=\"{base}\"/>\
             <text class=\"now\" x=\"{xn:.1}\" y=\"{ty}\" text-anchor=\"middle\">now</text>",
            ty = TOP - 2.0,
        );
    }
    out.push_str("</svg>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::prices::Slot;

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap() + TimeDelta::hours(h)
    }

    fn curve() -> PriceCurve {
        let slots = (0..30)
            .filter(|h| *h != 20)
            .map(|h| Slot {
                start: t(h),
                end: t(h + 1),
                price: 0.2 + 0.01 * h as f64,
            })
            .collect();
        PriceCurve::new("EUR", slots).unwrap()
    }

    #[test]
    fn blocks_now_and_a_gap() {
        let bands = [Band {
            start: t(2),
            end: t(4),
        }];
        let s = svg(&curve(), t(0), t(24), t(1), &bands, Tz::UTC, "prices <&>").unwrap();
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{s}");
        assert_eq!(s.matches("<rect class=\"block\"").count(), 1, "{s}");
        assert!(
            s.contains("data-start=\"2024-03-04T02:00:00+00:00\""),
            "{s}"
        );
        assert!(s.contains("charge 02:00–04:00"), "{s}");
        assert!(s.contains(">now</text>"), "{s}");
        assert!(s.contains("prices &lt;&amp;&gt;"), "{s}");
        assert!(!s.contains("<&>"), "{s}");
        // The missing slot at 20:00 starts a new line (a move, not a draw).
        assert_eq!(s.matches('M').count(), 2, "{s}");
        for h in ["00:00", "03:00", "21:00"] {
            assert!(s.contains(&format!(">{h}</text>")), "{h}: {s}");
        }
    }

    #[test]
    fn no_prices_no_chart_and_the_span_is_capped() {
        assert!(svg(&curve(), t(40), t(48), t(40), &[], Tz::UTC, "x").is_none());
        assert!(svg(&curve(), t(5), t(5), t(5), &[], Tz::UTC, "x").is_none());
        // Asked for three days: drawn for two at most (the curve ends at 30 h).
        let s = svg(&curve(), t(0), t(72), t(0), &[], Tz::UTC, "x").unwrap();
        assert!(
            s.contains(">18:00</text>") && !s.contains(">03:00</text>"),
            "{s}"
        );
    }
}
