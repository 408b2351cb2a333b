//! The daemon's counters and histograms, in Prometheus' data model
//! (`prometheus-client`), and their exposition for `GET /metrics`.
//!
//! Events are counted where they happen: the Enode client counts requests,
//! the token keeper refreshes, the price feed fetches, the fleet commands,
//! rate limits and block-edge lateness. What is a state rather than an
//! event (users by status, vehicles by state, the age of the prices) is
//! read at scrape time from a [`Snapshot`], so it can never drift from the
//! state it describes.
//!
//! Names follow Prometheus' rules: the `smartcharged_` prefix, base units
//! (seconds), `_total` on counters (added by the encoder), `_seconds` on
//! durations. Every label value comes from a fixed set in this code, never
//! from outside input, so the number of series is bounded.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

/// The content type of the exposition (OpenMetrics text, which Prometheus
/// prefers and reads natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the block-edge lateness buckets, seconds: a command at a
/// block edge normally goes out within a second; tens of seconds mean a
/// rate limit or a slow round, minutes mean something is wrong.
pub const LATENESS_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A label set of static names and values.
type Labels1 = [(&'static str, &'static str); 1];
/// Two static labels.
type Labels2 = [(&'static str, &'static str); 2];
/// A float counter (seconds).
type SecondsCounter = Counter<f64, AtomicU64>;

/// Every counter and histogram of one daemon. One is made per
/// [`Daemon`](crate::daemon::run::Daemon) and shared by its parts through an
/// `Arc`; tests start several daemons in one process, so there is no global.
#[derive(Debug)]
pub struct Metrics {
    /// The registry the event metrics live in.
    registry: Registry,
    /// Enode API requests by endpoint (method and path template) and status
    /// class (`2xx`, `4xx`, `5xx`, `error` for no answer).
    enode_requests: Family<Labels2, Counter>,
    /// Enode answers 429 (on any endpoint).
    enode_rate_limited: Counter,
    /// Seconds for which users or a whole vendor were held back after a
    /// 429, a 503 or a failure (Retry-After or backoff), as scheduled when
    /// the hold was set; `scope` is `user` or `vendor`.
    enode_blocked: Family<Labels1, SecondsCounter>,
    /// Refresh-token grants by result: `ok`, `invalid_grant` (the user must
    /// link again), `failed` (anything else; tried again).
    token_refreshes: Family<Labels1, Counter>,
    /// Charging commands by action and result (`ok`, `failed`).
    commands: Family<Labels2, Counter>,
    /// How late START/STOP went out after the block edge it serves.
    block_edge_lateness: Histogram,
    /// Price fetches by result (`ok`, `failed`).
    price_fetches: Family<Labels1, Counter>,
    /// When and from where prices were last fetched successfully (this
    /// process).
    last_price_fetch: Mutex<Option<PriceFetch>>,
}

/// A successful price fetch: what `status` and the status page show.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PriceFetch {
    /// When.
    pub at: DateTime<Utc>,
    /// The source's id (`awattar:DE`, `file:/path`, ...), from the config.
    pub source: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A status class label for an HTTP status code.
pub fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    /// All metrics at zero, registered under the `smartcharged_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("smartcharged");
        registry.register(
            "build",
            "The running version",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        let enode_requests = Family::<Labels2, Counter>::default();
        registry.register(
            "enode_requests",
            "Enode API requests by endpoint and status class (error: no answer)",
            enode_requests.clone(),
        );
        let enode_rate_limited = Counter::default();
        registry.register(
            "enode_rate_limited",
            "Enode API answers 429 Too Many Requests",
            enode_rate_limited.clone(),
        );
        let enode_blocked = Family::<Labels1, SecondsCounter>::default();
        registry.register_with_unit(
            "enode_blocked",
            "Time users (scope=user) or a whole vendor (scope=vendor) were held back from the Enode API after a rate limit or failure",
            Unit::Seconds,
            enode_blocked.clone(),
        );
        let token_refreshes = Family::<Labels1, Counter>::default();
        registry.register(
            "token_refreshes",
            "Refresh-token grants by result (ok, invalid_grant, failed)",
            token_refreshes.clone(),
        );
        let commands = Family::<Labels2, Counter>::default();
        registry.register(
            "commands",
            "Commands sent to vehicles by action and result (ok, failed)",
            commands.clone(),
        );
        let block_edge_lateness = Histogram::new(LATENESS_BUCKETS);
        registry.register_with_unit(
            "block_edge_lateness",
            "Delay between a planned block edge and the START or STOP sent for it",
            Unit::Seconds,
            block_edge_lateness.clone(),
        );
        let price_fetches = Family::<Labels1, Counter>::default();
        registry.register(
            "price_fetches",
            "Price fetches from the configured source by result (ok, failed)",
            price_fetches.clone(),
        );
        // Series that exist from the start, so a rate() over them works
        // before the first event.
        for r in ["ok", "invalid_grant", "failed"] {
            let _ = token_refreshes.get_or_create(&[("result", r)]);
        }
        for r in ["ok", "failed"] {
            let _ = price_fetches.get_or_create(&[("result", r)]);
        }
        for s in ["user", "vendor"] {
            let _ = enode_blocked.get_or_create(&[("scope", s)]);
        }
        for a in ["start", "stop"] {
            for r in ["ok", "failed"] {
                let _ = commands.get_or_create(&[("action", a), ("result", r)]);
            }
        }
        Metrics {
            registry,
            enode_requests,
            enode_rate_limited,
            enode_blocked,
            token_refreshes,
            commands,
            block_edge_lateness,
            price_fetches,
            last_price_fetch: Mutex::new(None),
        }
    }

    /// Counts one Enode request: `endpoint` is a fixed template such as
    /// `GET /vehicles/:id`, `status` the HTTP status (None: no answer).
    pub fn enode_request(&self, endpoint: &'static str, status: Option<u16>) {
        let class = status.map_or("error", status_class);
        self.enode_requests
            .get_or_create(&[("endpoint", endpoint), ("class", class)])
            .inc();
        if status == Some(429) {
            self.enode_rate_limited.inc();
        }
    }

    /// Adds time for which requests are held back; `vendor` says whether a
    /// whole vendor is (else one user).
    pub fn blocked(&self, vendor: bool, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            let scope = if vendor { "vendor" } else { "user" };
            self.enode_blocked
                .get_or_create(&[("scope", scope)])
                .inc_by(seconds);
        }
    }

    /// Counts a refresh-token grant by result (`ok`, `invalid_grant`,
    /// `failed`).
    pub fn token_refresh(&self, result: &'static str) {
        self.token_refreshes
            .get_or_create(&[("result", result)])
            .inc();
    }

    /// Counts a command by action (`START`, `STOP`, ...: lowercased here)
    /// and whether Enode accepted it.
    pub fn command(&self, action: &'static str, ok: bool) {
        let action = match action {
            "START" => "start",
            "STOP" => "stop",
            "DISABLE_ENODE_SMART_CHARGING" => "disable_enode_smart_charging",
            _ => "other",
        };
        let result = if ok { "ok" } else { "failed" };
        self.commands
            .get_or_create(&[("action", action), ("result", result)])
            .inc();
    }

    /// Records how late a command went out after its block edge.
    pub fn block_edge_late(&self, seconds: f64) {
        if seconds.is_finite() {
            self.block_edge_lateness.observe(seconds.max(0.0));
        }
    }

    /// Counts a price fetch from `source`; a good one is the new "last
    /// fetched".
    pub fn price_fetch(&self, ok: bool, now: DateTime<Utc>, source: &str) {
        let result = if ok { "ok" } else { "failed" };
        self.price_fetches
            .get_or_create(&[("result", result)])
            .inc();
        if ok {
            *self.last_price_fetch.lock().expect("metrics lock") = Some(PriceFetch {
                at: now,
                source: crate::limits::clip(source),
            });
        }
    }

    /// When and from where prices were last fetched successfully by this
    /// process.
    pub fn last_price_fetch(&self) -> Option<PriceFetch> {
        self.last_price_fetch.lock().expect("metrics lock").clone()
    }

    /// The whole exposition: the event metrics, then the state metrics of
    /// `snap`, then `# EOF`.
    pub fn encode(&self, snap: &Snapshot) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        encode_registry(&mut out, &self.registry)?;
        encode_registry(&mut out, &snap.registry())?;
        encode_eof(&mut out)?;
        Ok(out)
    }
}

/// What the daemon is, at one scrape: the state metrics. Counts are by a
/// fixed set of label values; a value with no member shows as 0, so a
/// dashboard sees a drop to zero rather than a vanished series.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Users by status: `active`, `needs_relink`.
    pub users: Vec<(&'static str, u64)>,
    /// Vehicles by state (see [`VEHICLE_STATES`]).
    pub vehicles: Vec<(&'static str, u64)>,
    /// Seconds since prices were last fetched successfully (None: not since
    /// start; the daemon then runs on stored prices).
    pub price_fetch_age_seconds: Option<f64>,
    /// Seconds from now to the end of the newest known price (negative: the
    /// known prices are in the past; None: no prices at all).
    pub price_horizon_seconds: Option<f64>,
    /// Seconds since the daemon started.
    pub uptime_seconds: f64,
    /// This month's savings (none: not known).
    pub month: Option<MonthSavings>,
}

/// This month's plug-in sessions in sum, for the savings gauges.
#[derive(Debug, Clone, Default)]
pub struct MonthSavings {
    /// The prices' ISO 4217 code (a label: one value per daemon).
    pub currency: String,
    /// Grid energy charged, kWh (exported in joules).
    pub energy_kwh: f64,
    /// Its cost at the prices of the minutes charged.
    pub cost: f64,
    /// Its cost had each session charged at once from plug-in.
    pub at_once_cost: f64,
    /// Sessions that ended this month.
    pub sessions: u64,
}

/// Joules in a kilowatt-hour.
const JOULES_PER_KWH: f64 = 3.6e6;

/// The states vehicles are counted in: the read model's coarse states
/// (`Why::state`): `charging`, `waiting` (plugged in, for a cheaper block),
/// `idle` (not plugged in at home, done or full), `manual` (the driver, an
/// operator's stop or Enode's smart charging is in charge), `trouble`
/// (unreachable, unresponsive, no prices, cannot plan). Each is exported,
/// at 0 when no vehicle is in it.
pub const VEHICLE_STATES: [&str; 5] = ["charging", "waiting", "idle", "manual", "trouble"];

impl Snapshot {
    /// A registry holding the snapshot's gauges, made per scrape.
    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("smartcharged");
        let users = Family::<Labels1, Gauge>::default();
        for (status, n) in &self.users {
            users
                .get_or_create(&[("status", status)])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        r.register("users", "Linked users by status", users);
        let vehicles = Family::<Labels1, Gauge>::default();
        for (state, n) in &self.vehicles {
            vehicles
                .get_or_create(&[("state", state)])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        r.register(
            "vehicles",
            "Vehicles seen by the daemon by control state",
            vehicles,
        );
        if let Some(age) = self.price_fetch_age_seconds {
            let g = Gauge::<f64, AtomicU64>::default();
            g.set(age);
            r.register_with_unit(
                "price_fetch_age",
                "Time since prices were last fetched successfully",
                Unit::Seconds,
                g,
            );
        }
        if let Some(h) = self.price_horizon_seconds {
            let g = Gauge::<f64, AtomicU64>::default();
            g.set(h);
            r.register_with_unit(
                "price_horizon",
                "Time from now to the end of the newest known price (negative when all known prices are past)",
                Unit::Seconds,
                g,
            );
        }
        if let Some(m) = &self.month {
            // The code comes from the config; anything but three letters
            // is not a currency code and is not exported as a label.
            let currency =
                if m.currency.len() == 3 && m.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    m.currency.clone()
                } else {
                    "unknown".to_owned()
                };
            let energy = Gauge::<f64, AtomicU64>::default();
            energy.set(m.energy_kwh * JOULES_PER_KWH);
            r.register_with_unit(
                "month_energy",
                "Grid energy charged in plug-in sessions that ended this month (local time)",
                Unit::Joules,
                energy,
            );
            let cost = Family::<Vec<(&'static str, String)>, Gauge<f64, AtomicU64>>::default();
            for (basis, v) in [("charged", m.cost), ("at_once", m.at_once_cost)] {
                cost.get_or_create(&vec![
                    ("currency", currency.clone()),
                    ("basis", basis.to_owned()),
                ])
                .set(v);
            }
            r.register(
                "month_cost",
                "Cost of this month's sessions as charged (basis=charged) and had each charged at once from plug-in (basis=at_once)",
                cost,
            );
            let saving = Family::<Vec<(&'static str, String)>, Gauge<f64, AtomicU64>>::default();
            saving
                .get_or_create(&vec![("currency", currency)])
                .set(m.at_once_cost - m.cost);
            r.register(
                "month_saving",
                "Money saved this month: at-once cost minus the cost as charged",
                saving,
            );
            let sessions = Gauge::<i64>::default();
            sessions.set(i64::try_from(m.sessions).unwrap_or(i64::MAX));
            r.register(
                "month_sessions",
                "Plug-in sessions that ended this month",
                sessions,
            );
        }
        let up = Gauge::<f64, AtomicU64>::default();
        up.set(self.uptime_seconds);
        r.register_with_unit("uptime", "Time since the daemon started", Unit::Seconds, up);
        r
    }
}

/// The START or STOP edge a command serves: the latest block start (START)
/// or end (STOP) at or before `now`, if any.
pub fn block_edge(plan: &planner::Plan, start: bool, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    plan.blocks
        .iter()
        .map(|b| if start { b.start } else { b.end })
        .filter(|t| *t <= now)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_prefix_units_and_eof() {
        let m = Metrics::new();
        m.enode_request("GET /vehicles", Some(200));
        m.enode_request("GET /vehicles", Some(429));
        m.enode_request("GET /vehicles", None);
        m.command("START", true);
        m.block_edge_late(0.2);
        m.blocked(false, 30.0);
        let snap = Snapshot {
            users: vec![("active", 2), ("needs_relink", 0)],
            vehicles: vec![("charging", 1)],
            price_fetch_age_seconds: None,
            price_horizon_seconds: Some(3600.0),
            uptime_seconds: 5.0,
            month: Some(MonthSavings {
                currency: "EUR".into(),
                energy_kwh: 2.0,
                cost: 0.5,
                at_once_cost: 0.75,
                sessions: 1,
            }),
        };
        let text = m.encode(&snap).unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains(
            "smartcharged_enode_requests_total{endpoint=\"GET /vehicles\",class=\"2xx\"} 1\n"
        ));
        assert!(text.contains(
            "smartcharged_enode_requests_total{endpoint=\"GET /vehicles\",class=\"error\"} 1\n"
        ));
        assert!(
            text.contains("smartcharged_enode_rate_limited_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("smartcharged_enode_blocked_seconds_total{scope=\"user\"} 30.0\n"),
            "{text}"
        );
        assert!(
            text.contains("smartcharged_block_edge_lateness_seconds_bucket{le=\"0.5\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("smartcharged_users{status=\"active\"} 2\n"),
            "{text}"
        );
        assert!(!text.contains("price_fetch_age"), "{text}");
        assert!(
            text.contains("smartcharged_month_energy_joules 7200000.0\n"),
            "{text}"
        );
        assert!(
            text.contains("smartcharged_month_saving{currency=\"EUR\"} 0.25\n"),
            "{text}"
        );
        // Every sample name carries the prefix.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("smartcharged_"), "{line}");
        }
    }

    #[test]
    fn block_edges_are_the_latest_passed() {
        use chrono::TimeZone;
        let t = |h| Utc.with_ymd_and_hms(2024, 3, 4, h, 0, 0).unwrap();
        let block = |s, e| planner::Block {
            start: t(s),
            end: t(e),
            energy_kwh: 1.0,
            cost: 0.1,
            tentative: false,
        };
        let plan = planner::Plan {
            feasible: true,
            charge_minutes: 120,
            energy_kwh: 2.0,
            cost: 0.2,
            asap_cost: 0.3,
            shortfall_kwh: 0.0,
            blocks: vec![block(1, 2), block(4, 5)],
            warnings: Vec::new(),
        };
        assert_eq!(block_edge(&plan, true, t(4)), Some(t(4)));
        assert_eq!(block_edge(&plan, false, t(4)), Some(t(2)));
        assert_eq!(block_edge(&plan, true, t(0)), None);
    }
}
