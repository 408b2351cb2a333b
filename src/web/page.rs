//! The status page, `GET /` on the HTTP listener: one self-contained,
//! read-only HTML document made from a read-model [`Snapshot`]. Per
//! vehicle: state of charge, plugged in and charging, the deadline, the
//! explanation, the price chart with the planned blocks and a "now" line
//! ([`super::chart`]), the last commands and this month's saving.
//!
//! No script, no external asset (the listener sends a Content-Security-
//! Policy that forbids both), so it works with JavaScript off and behind
//! any proxy. Every string that comes from outside (vehicle and user ids,
//! vendor names, reasons, the explanation, which may quote an error) goes
//! through [`esc`]. A large fleet is split into pages of
//! [`VEHICLES_PER_PAGE`] (`/?page=N`), so the page stays small.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::chart::{self, Band};
use crate::daemon::readmodel::{Snapshot, VehicleView};
use crate::localtime::short;

/// Vehicles shown on one page.
pub const VEHICLES_PER_PAGE: usize = 50;
/// Seconds after which the browser reloads the page (a meta refresh: it
/// needs no script).
pub const REFRESH_SECONDS: u32 = 60;
/// The Content-Security-Policy the page is sent with: nothing but the
/// document itself and its inline style.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                       base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Text made safe for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:52rem;padding:0.75rem;\
color:#1d1d1f;background:#fafafa;line-height:1.4}\
h1{font-size:1.4rem;margin:0.2rem 0}h2{font-size:1.15rem;margin:0 0 0.3rem;overflow-wrap:anywhere}\
.meta,.note{color:#555;font-size:0.9rem}\
article,section.fleet{background:#fff;border:1px solid #ddd;border-radius:8px;padding:0.75rem;margin:0.75rem 0}\
.why{font-size:1.05rem;margin:0.3rem 0}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:0.1rem 0.8rem;margin:0.4rem 0}\
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}\
.state{font-size:0.8rem;padding:0.1rem 0.45rem;border-radius:1rem;vertical-align:middle;background:#eee}\
.state-charging{background:#c8f0c8}.state-waiting{background:#dde8ff}.state-manual{background:#ffe9b3}\
.state-trouble{background:#ffc9c9}\
svg.chart{width:100%;height:auto;display:block;margin:0.4rem 0}\
svg .price{fill:none;stroke:#1f5fbf;stroke-width:1.5}svg .block{fill:#3fb950;fill-opacity:0.3}\
svg .now{stroke:#d1242f;fill:#d1242f;font-size:10px}svg .axis{stroke:#999}svg .grid{stroke:#eee}\
svg .tick{font-size:10px;fill:#555}\
ol.blocks{margin:0.2rem 0;padding-left:1.3rem}\
table{border-collapse:collapse;font-size:0.85rem;width:100%}td,th{text-align:left;padding:0.15rem 0.3rem;\
border-bottom:1px solid #eee;vertical-align:top}td.r{overflow-wrap:anywhere}\
nav a{margin-right:0.6rem}";

/// The page for `snap`, showing page `page` (1-based; clamped to the
/// pages there are) of its vehicles.
pub fn render(snap: &Snapshot, page: usize) -> String {
    let now = snap.taken_at;
    let tz = snap.time_zone;
    let t = |at: DateTime<Utc>| short(at, now, tz);
    let total = snap.vehicles.len();
    let pages = total.div_ceil(VEHICLES_PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    let first = (page - 1) * VEHICLES_PER_PAGE;
    let shown = &snap.vehicles[first.min(total)..(first + VEHICLES_PER_PAGE).min(total)];
    let currency = snap.prices.currency.as_deref().unwrap_or("");
    let mut o = String::with_capacity(16 * 1024 + shown.len() * 8 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <link rel=\"icon\" href=\"data:,\"><title>smartcharged</title><style>{STYLE}</style></head>\
         <body><header><h1>smartcharged</h1><p class=\"meta\">Version {v}, running since {since}. \
         As of {at}; times in <span id=\"zone\">{zone}</span>.</p></header>",
        v = esc(snap.version),
        since = t(snap.started_at),
        at = t(now),
        zone = esc(tz.name()),
    );

    // The fleet: savings, prices, users, backoffs.
    o.push_str("<section class=\"fleet\"><dl>");
    let m = &snap.month.total;
    let _ = write!(
        o,
        "<dt>Saved in {month}</dt><dd id=\"saving\">{saving:.2} {cur} on {kwh:.1} kWh \
         ({sessions} sessions, {met} deadlines met)</dd>",
        month = esc(&snap.month.month),
        saving = m.saving,
        cur = esc(currency),
        kwh = m.energy_kwh,
        sessions = m.sessions,
        met = m.deadlines_met,
    );
    o.push_str("<dt>Price now</dt><dd>");
    match snap.prices.price_now {
        Some(p) => {
            let _ = write!(o, "{p:.3} {}/kWh", esc(currency));
        }
        None => o.push_str("unknown"),
    }
    if let (Some(until), Some(p)) = (snap.prices.known_until, snap.prices.newest_price) {
        let _ = write!(o, "; known until {} (last: {p:.3})", t(until));
    }
    o.push_str("</dd><dt>Prices fetched</dt><dd>");
    match &snap.prices.last_fetch {
        Some(f) => {
            let _ = write!(o, "{} from {}", t(f.at), esc(&f.source));
        }
        None => o.push_str("not since start (stored prices)"),
    }
    let users = snap.users_by_status();
    let _ = write!(o, "</dd><dt>Users</dt><dd>{}", snap.users.len());
    if !users.is_empty() {
        let parts: Vec<String> = users.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let _ = write!(o, " ({})", parts.join(", "));
    }
    let states: Vec<String> = snap
        .vehicles_by_state()
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let _ = write!(
        o,
        "</dd><dt>Vehicles</dt><dd>{total}{}</dd>",
        if states.is_empty() {
            String::new()
        } else {
            format!(" ({})", states.join(", "))
        }
    );
    for b in snap.backoff.iter().take(10) {
        let _ = write!(
            o,
            "<dt>Held back</dt><dd>{} {} until {}</dd>",
            b.scope,
            esc(&b.id),
            t(b.until)
        );
    }
    if snap.backoff.len() > 10 {
        let _ = write!(o, "<dt></dt><dd>and {} more</dd>", snap.backoff.len() - 10);
    }
    o.push_str("</dl>");
    if let Some(curve) = &snap.prices.curve {
        if let Some(svg) = chart::svg(
            curve,
            now - TimeDelta::hours(2),
            now + TimeDelta::hours(36),
            now,
            &[],
            tz,
            "Prices",
        ) {
            o.push_str(&svg);
        }
    }
    o.push_str("</section>");

    if pages > 1 {
        nav(&mut o, page, pages, first, shown.len(), total);
    }
    if total == 0 {
        o.push_str("<p class=\"note\">No vehicles yet: link a user with <code>smartcharged link</code>.</p>");
    }
    for v in shown {
        vehicle(&mut o, snap, v);
    }
    if pages > 1 {
        nav(&mut o, page, pages, first, shown.len(), total);
    }
    o.push_str(
        "<footer class=\"note\">Read-only. To steer, use the admin socket: \
         <code>smartcharged override</code>, <code>trip</code>, <code>replan</code>.</footer>\
         </body></html>\n",
    );
    o
}

/// The pager: which vehicles are shown, links to the others.
fn nav(o: &mut String, page: usize, pages: usize, first: usize, n: usize, total: usize) {
    let _ = write!(
        o,
        "<nav class=\"note\">Vehicles {}–{} of {total}, page {page} of {pages}: ",
        first + 1,
        first + n
    );
    if page > 1 {
        let _ = write!(o, "<a href=\"?page={}\">previous</a>", page - 1);
    }
    if page < pages {
        let _ = write!(o, "<a href=\"?page={}\">next</a>", page + 1);
    }
    o.push_str("</nav>");
}

/// Yes, no, or unknown.
fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

/// One vehicle's card.
fn vehicle(o: &mut String, snap: &Snapshot, v: &VehicleView) {
    let now = snap.taken_at;
    let tz: Tz = snap.time_zone;
    let t = |at: DateTime<Utc>| short(at, now, tz);
    let id = esc(&v.id);
    let _ = write!(
        o,
        "<article class=\"vehicle\" id=\"vehicle-{id}\" data-vehicle=\"{id}\"><h2>{id} \
         <span class=\"state state-{st}\">{st}</span></h2><p class=\"why\">{why}</p><dl>",
        st = v.state,
        why = esc(&v.explanation.text),
    );
    if let Some(u) = &v.user {
        let _ = write!(o, "<dt>User</dt><dd>{}</dd>", esc(u.as_str()));
    }
    let obs = v.observed.as_ref();
    let soc = obs.and_then(|x| x.soc);
    let _ = write!(
        o,
        "<dt>Charge</dt><dd class=\"soc\">{}{}</dd>",
        soc.map_or_else(|| "unknown".to_owned(), |s| format!("{s:.0}%")),
        v.target_percent
            .map_or_else(String::new, |t| format!(", target {t:.0}%"))
    );
    let _ = write!(
        o,
        "<dt>Plugged in</dt><dd>{}</dd><dt>Charging</dt><dd>{}</dd>",
        yes_no(obs.and_then(|x| x.plugged)),
        yes_no(obs.and_then(|x| x.charging)),
    );
    if let Some(p) = &v.plan {
        let _ = write!(
            o,
            "<dt>Deadline</dt><dd class=\"deadline\">{}{}</dd>",
            t(p.deadline),
            if p.feasible {
                ""
            } else {
                " (cannot reach the target by then)"
            }
        );
    }
    if let Some(s) = &v.steer {
        let _ = write!(
            o,
            "<dt>Override</dt><dd>{}{} (by {})</dd>",
            s.mode.as_str(),
            s.until
                .map_or_else(String::new, |u| format!(" until {}", t(u))),
            esc(&s.by)
        );
    }
    if let Some(trip) = &v.trip {
        let _ = write!(
            o,
            "<dt>Trip</dt><dd>depart {}{}</dd>",
            t(trip.depart),
            trip.target_percent
                .map_or_else(String::new, |p| format!(", {p:.0}%"))
        );
    }
    if let Some(row) = snap
        .month
        .vehicles
        .binary_search_by(|r| r.vehicle.as_str().cmp(&v.id))
        .ok()
        .map(|i| &snap.month.vehicles[i])
    {
        let _ = write!(
            o,
            "<dt>Saved in {}</dt><dd>{:.2} {} on {:.1} kWh</dd>",
            esc(&snap.month.month),
            row.saving,
            esc(snap.prices.currency.as_deref().unwrap_or("")),
            row.energy_kwh
        );
    }
    o.push_str("</dl>");
    if let Some(p) = &v.plan {
        let bands: Vec<Band> = p
            .blocks
            .iter()
            .map(|b| Band {
                start: b.start,
                end: b.end,
            })
            .collect();
        // From an hour ago, or the first block if it began earlier (a
        // block running since the afternoon).
        let from = p
            .blocks
            .iter()
            .map(|b| b.start)
            .chain([now - TimeDelta::hours(1)])
            .min()
            .unwrap_or(now);
        let to = p
            .blocks
            .iter()
            .map(|b| b.end)
            .chain([p.deadline])
            .max()
            .unwrap_or(p.deadline)
            .max(now + TimeDelta::hours(6));
        if let Some(curve) = &snap.prices.curve {
            if let Some(svg) = chart::svg(
                curve,
                from,
                to,
                now,
                &bands,
                tz,
                &format!("Prices and planned charging of {}", v.id),
            ) {
                o.push_str(&svg);
            }
        }
        if p.blocks.is_empty() {
            o.push_str("<p class=\"note\">No charging planned.</p>");
        } else {
            o.push_str("<ol class=\"blocks\">");
            for b in &p.blocks {
                let _ =
                    write!(
                    o,
                    "<li class=\"block\" data-start=\"{}\" data-end=\"{}\">{}–{}, {:.1} kWh{}</li>",
                    b.start.to_rfc3339(),
                    b.end.to_rfc3339(),
                    t(b.start),
                    b.end.with_timezone(&tz).format("%H:%M"),
                    b.energy_kwh,
                    if b.tentative { " (forecast prices)" } else { "" }
                );
            }
            o.push_str("</ol>");
        }
    }
    if !v.last_commands.is_empty() {
        o.push_str("<table class=\"commands\"><tr><th>When</th><th>Command</th><th>Why</th></tr>");
        for c in v.last_commands.iter().rev() {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}{}</td><td class=\"r\">{}</td></tr>",
                t(c.at),
                esc(&c.action),
                if c.result == "ok" {
                    String::new()
                } else {
                    format!(" ({})", esc(&c.result))
                },
                esc(&c.reason)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</article>");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;
    use crate::daemon::control::{Explanation, Why};
    use crate::daemon::readmodel::{Observed, PlanView, PricesView};
    use crate::prices::{PriceCurve, Slot};

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap() + TimeDelta::hours(h)
    }

    fn vehicle(id: &str, why: &str) -> VehicleView {
        VehicleView {
            id: id.into(),
            user: None,
            state: "waiting",
            explanation: Explanation {
                code: Why::Waiting,
                text: why.into(),
            },
            observed: Some(Observed {
                at: Some(at(17)),
                plugged: Some(true),
                at_controlled_location: true,
                location: None,
                charging: Some(false),
                soc: Some(41.0),
                charge_limit: None,
                charge_rate_kw: None,
                power_kw: None,
            }),
            session: true,
            suspended: None,
            unresponsive: false,
            unreachable: false,
            pending: None,
            steer: None,
            trip: None,
            target_percent: Some(80.0),
            plan: Some(PlanView {
                made_at: at(17),
                deadline: at(31),
                feasible: true,
                energy_kwh: 20.0,
                cost: 4.0,
                asap_cost: 5.0,
                blocks: vec![planner::Block {
                    start: at(25),
                    end: at(27),
                    energy_kwh: 20.0,
                    cost: 4.0,
                    tentative: false,
                }],
                warnings: Vec::new(),
            }),
            next_edge: Some(at(25)),
            last_commands: vec![crate::store::JournalEntry {
                at: at(16),
                user: "u".into(),
                vehicle: id.into(),
                action: "STOP".into(),
                reason: "<b>bold</b> reason".into(),
                price: None,
                result: "ok".into(),
            }],
        }
    }

    fn snapshot(vehicles: Vec<VehicleView>) -> Snapshot {
        let slots = (0..36)
            .map(|h| Slot {
                start: at(h),
                end: at(h + 1),
                price: 0.3 - 0.005 * h as f64,
            })
            .collect();
        let curve = Arc::new(PriceCurve::new("EUR", slots).unwrap());
        Snapshot {
            taken_at: at(17),
            version: "0.1.0",
            started_at: at(12),
            uptime_seconds: 5 * 3600,
            time_zone: chrono_tz::Europe::Berlin,
            users: Vec::new(),
            vehicles,
            prices: PricesView {
                currency: Some("EUR".into()),
                known_from: Some(at(0)),
                known_until: Some(at(36)),
                price_now: Some(0.215),
                newest_price: Some(0.125),
                last_fetch: Some(crate::metrics::PriceFetch {
                    at: at(12),
                    source: "file:<prices>".into(),
                }),
                curve: Some(curve),
            },
            backoff: Vec::new(),
            month: crate::report::summarize(
                "2024-03".into(),
                chrono_tz::Europe::Berlin,
                std::iter::empty(),
            ),
        }
    }

    #[test]
    fn a_vehicle_with_its_plan_in_local_time() {
        let page = render(&snapshot(vec![vehicle("car-1", "Waiting.")]), 1);
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(
            page.contains("<span id=\"zone\">Europe/Berlin</span>"),
            "{page}"
        );
        assert!(page.contains("id=\"vehicle-car-1\""), "{page}");
        // 01:00-03:00 UTC is 02:00-04:00 in Berlin, tomorrow.
        assert!(
            page.contains(">tomorrow 02:00–04:00, 20.0 kWh</li>"),
            "{page}"
        );
        assert!(page.contains("<rect class=\"block\""), "{page}");
        assert!(page.contains(">now</text>"), "{page}");
        assert!(page.contains("41%, target 80%"), "{page}");
        assert!(page.contains("file:&lt;prices&gt;"), "{page}");
        // No script, no external reference.
        assert!(!page.contains("<script"), "{page}");
        assert!(
            !page.contains("src=") && !page.contains("href=\"http"),
            "{page}"
        );
    }

    #[test]
    fn strings_from_outside_cannot_make_markup() {
        let evil = "<script>alert(1)</script>";
        let mut v = vehicle("car-\"><img src=x onerror=alert(1)>", evil);
        v.user = Some(crate::users::UserId::new("a@b").unwrap());
        let page = render(&snapshot(vec![v]), 1);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>bold"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("&lt;b&gt;bold&lt;/b&gt; reason"), "{page}");
    }

    #[test]
    fn a_large_fleet_is_paged() {
        let n = 2 * VEHICLES_PER_PAGE + 20;
        let vehicles: Vec<VehicleView> = (0..n)
            .map(|i| vehicle(&format!("car-{i:04}"), "Waiting."))
            .collect();
        let snap = snapshot(vehicles);
        let count = |p: &str| p.matches("<article class=\"vehicle\"").count();
        let first = render(&snap, 1);
        assert_eq!(count(&first), VEHICLES_PER_PAGE);
        assert!(
            first.contains("Vehicles 1–50 of 120, page 1 of 3"),
            "{first}"
        );
        assert!(first.contains("href=\"?page=2\">next"), "{first}");
        let last = render(&snap, 3);
        assert_eq!(count(&last), 20);
        assert!(last.contains("id=\"vehicle-car-0119\""));
        assert!(!last.contains("id=\"vehicle-car-0000\""));
        // Past the end: the last page; page 0: the first.
        assert_eq!(render(&snap, 99), last);
        assert_eq!(render(&snap, 0), first);
        // The page is bounded whatever the fleet.
        assert!(first.len() < 400 * 1024, "{} bytes", first.len());
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc("car-1"), "car-1");
        assert!(matches!(esc("plain"), Cow::Borrowed(_)));
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
