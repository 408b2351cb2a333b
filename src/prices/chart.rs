//! Terminal and JSON rendering of a curve for `smartcharged prices`: one
//! bar per slot in local time, the cheapest quarter of the slots marked `*`
//! and the cheapest contiguous window marked `◆`.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::PriceCurve;

/// Length of the cheapest window the chart marks.
pub const WINDOW: TimeDelta = TimeDelta::hours(3);

/// Renders the slots ending after `from` as bars `width` characters wide.
pub fn render(curve: &PriceCurve, tz: Tz, from: DateTime<Utc>, width: usize) -> String {
    let slots = curve.from(from);
    if slots.is_empty() {
        return "no prices known\n".to_string();
    }
    let (min, max) = slots
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s.price), hi.max(s.price))
        });
    // Bars start at zero, or at the lowest price when some are negative.
    let floor = min.min(0.0);
    let span = (max - floor).max(f64::EPSILON);
    let mut sorted: Vec<f64> = slots.iter().map(|s| s.price).collect();
    sorted.sort_by(f64::total_cmp);
    let cheap_limit = sorted[(sorted.len() - 1) / 4];
    let window = curve.cheapest_window(from, WINDOW);
    let in_window = |t: DateTime<Utc>| window.is_some_and(|(w, _)| t >= w && t < w + WINDOW);
    let mut out = String::new();
    let mut day = None;
    for s in slots {
        let local = s.start.with_timezone(&tz);
        if day != Some(local.date_naive()) {
            day = Some(local.date_naive());
            out.push_str(&format!("{}\n", local.format("%a %Y-%m-%d")));
        }
        let len = (((s.price - floor) / span) * width as f64).round() as usize;
        let mark = match (in_window(s.start), s.price <= cheap_limit) {
            (true, _) => '◆',
            (false, true) => '*',
            _ => ' ',
        };
        out.push_str(&format!(
            "  {}-{} {:>9.4} {} {}\n",
            local.format("%H:%M"),
            s.end.with_timezone(&tz).format("%H:%M"),
            s.price,
            mark,
            "█".repeat(len.max(1))
        ));
    }
    out.push_str(&format!(
        "prices in {}/kWh, times in {tz}; * cheapest quarter",
        curve.currency
    ));
    if let Some((start, mean)) = window {
        out.push_str(&format!(
            "; ◆ cheapest {} h from {} at {:.4} on average",
            WINDOW.num_hours(),
            start.with_timezone(&tz).format("%a %H:%M"),
            mean
        ));
    }
    out.push('\n');
    out
}

/// The slots ending after `from` as JSON: `{"currency", "slots": [{start, end, price_per_kwh}]}`.
pub fn to_json(curve: &PriceCurve, from: DateTime<Utc>) -> Value {
    let slots: Vec<Value> = curve
        .from(from)
        .iter()
        .map(|s| json!({ "start": s.start, "end": s.end, "price_per_kwh": s.price }))
        .collect();
    json!({ "currency": curve.currency, "slots": slots })
}
