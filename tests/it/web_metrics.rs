//! `GET /metrics` over a simulated day (paused time, enode-sim): the
//! exposition is read with a Prometheus text parser at two instants, and
//! the counters must have moved by what the day did.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::fleet;
use prometheus_parse::{Scrape, Value};

/// One scrape, parsed: samples by name and sorted labels.
struct Metrics {
    /// `name{k="v",...}` (labels sorted) -> value; histograms by their
    /// `_count` and per bucket `name_bucket{le=..}`.
    values: HashMap<String, f64>,
    /// The names that have a HELP line.
    documented: Vec<String>,
}

impl Metrics {
    fn get(&self, key: &str) -> f64 {
        self.values.get(key).copied().unwrap_or(0.0)
    }

    fn sum_of(&self, name: &str) -> f64 {
        self.values
            .iter()
            .filter(|(k, _)| k.split('{').next() == Some(name))
            .map(|(_, v)| *v)
            .sum()
    }
}

async fn scrape(http: &reqwest::Client, addr: std::net::SocketAddr) -> Metrics {
    let resp = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "no EOF marker");
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let mut values = HashMap::new();
    for s in &scrape.samples {
        assert!(
            s.metric.starts_with("smartcharged_"),
            "unprefixed: {}",
            s.metric
        );
        let mut labels: Vec<_> = s.labels.iter().collect();
        labels.sort();
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let key = |name: &str, extra: &[String]| {
            let all: Vec<String> = labels.iter().chain(extra).cloned().collect();
            if all.is_empty() {
                name.to_owned()
            } else {
                format!("{name}{{{}}}", all.join(","))
            }
        };
        match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
                values.insert(key(&s.metric, &[]), *v);
            }
            Value::Histogram(buckets) => {
                for b in buckets {
                    values.insert(
                        key(
                            &format!("{}_bucket", s.metric),
                            &[format!("le=\"{}\"", b.less_than)],
                        ),
                        b.count,
                    );
                }
            }
            Value::Summary(_) => panic!("no summaries are exported"),
        }
    }
    let mut documented: Vec<String> = scrape.docs.keys().cloned().collect();
    documented.sort();
    Metrics { values, documented }
}

#[tokio::test(start_paused = true)]
async fn counters_move_over_a_simulated_day() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scenario = fleet::scenario(3, 5);
    let vehicles = scenario
        .users
        .iter()
        .map(|u| u.vehicles.len())
        .sum::<usize>();
    let r = fleet::start_with(scenario, "", &format!("\n[http]\nlisten = \"{addr}\"\n")).await;
    r.daemon.serve_http(listener);
    let http = reqwest::Client::new();

    // Early afternoon: polled, prices fetched, nobody plugged in yet.
    r.clock.sleep(Duration::from_secs(2 * 3600)).await;
    let a = scrape(&http, addr).await;
    for name in [
        "smartcharged_enode_requests",
        "smartcharged_enode_rate_limited",
        "smartcharged_enode_blocked_seconds",
        "smartcharged_token_refreshes",
        "smartcharged_commands",
        "smartcharged_block_edge_lateness_seconds",
        "smartcharged_price_fetches",
        "smartcharged_users",
        "smartcharged_vehicles",
        "smartcharged_price_horizon_seconds",
        "smartcharged_uptime_seconds",
    ] {
        assert!(
            a.documented.iter().any(|d| d == name),
            "{name} has no HELP: {:?}",
            a.documented
        );
    }
    let polls = "smartcharged_enode_requests_total{class=\"2xx\",endpoint=\"GET /vehicles\"}";
    assert!(a.get(polls) > 0.0, "no successful poll counted");
    assert_eq!(a.get("smartcharged_users{status=\"active\"}"), 3.0);
    assert_eq!(a.get("smartcharged_users{status=\"needs_relink\"}"), 0.0);
    assert_eq!(a.sum_of("smartcharged_vehicles"), vehicles as f64);
    assert!(a.get("smartcharged_price_fetches_total{result=\"ok\"}") >= 1.0);
    assert!(a.get("smartcharged_price_horizon_seconds") > 0.0);
    assert!(a.get("smartcharged_price_fetch_age_seconds") >= 0.0);
    assert!((a.get("smartcharged_uptime_seconds") - 7200.0).abs() < 5.0);
    assert_eq!(a.get("smartcharged_enode_rate_limited_total"), 0.0);

    // A burst of 429s, then the night: plug-ins, plans, START/STOP at
    // block edges, departures.
    r.sim
        .handle
        .rate_limit_next(None, 4, Duration::from_secs(40));
    r.clock
        .sleep(fleet::DAY - Duration::from_secs(2 * 3600))
        .await;
    let b = scrape(&http, addr).await;

    assert!(b.get(polls) > a.get(polls), "polls did not move");
    assert_eq!(b.get("smartcharged_enode_rate_limited_total"), 4.0);
    assert_eq!(
        b.get("smartcharged_enode_requests_total{class=\"4xx\",endpoint=\"GET /vehicles\"}")
            + b.get("smartcharged_enode_requests_total{class=\"4xx\",endpoint=\"POST /vehicles/:id/charging\"}")
            + b.get("smartcharged_enode_requests_total{class=\"4xx\",endpoint=\"POST /vehicles/:id/watch\"}"),
        4.0,
        "every 429 is a 4xx of its endpoint"
    );
    assert!(
        b.get("smartcharged_enode_blocked_seconds_total{scope=\"user\"}") >= 40.0,
        "each rate-limited user waits its Retry-After"
    );
    // The simulator's commands and ours agree.
    let sim_commands = r.sim.handle.command_log().len() as f64;
    let starts = b.get("smartcharged_commands_total{action=\"start\",result=\"ok\"}");
    let stops = b.get("smartcharged_commands_total{action=\"stop\",result=\"ok\"}");
    assert!(starts >= vehicles as f64, "every vehicle started: {starts}");
    assert!(
        starts + stops <= sim_commands,
        "{starts} + {stops} > {sim_commands}"
    );
    // Every first START/STOP at a block edge is timed; the edges are met
    // within a minute (rate limits included).
    let late = b.get("smartcharged_block_edge_lateness_seconds_bucket{le=\"inf\"}");
    assert!(late >= starts, "{late} edges timed, {starts} starts");
    assert_eq!(
        b.get("smartcharged_block_edge_lateness_seconds_bucket{le=\"60\"}"),
        late,
        "a block edge was more than a minute late"
    );
    assert!(
        b.get("smartcharged_token_refreshes_total{result=\"ok\"}")
            > a.get("smartcharged_token_refreshes_total{result=\"ok\"}"),
        "tokens were not refreshed over the day"
    );
    assert_eq!(
        b.get("smartcharged_token_refreshes_total{result=\"failed\"}"),
        0.0
    );
    assert!(
        b.get("smartcharged_price_fetches_total{result=\"ok\"}")
            > a.get("smartcharged_price_fetches_total{result=\"ok\"}"),
        "the next day's prices were not fetched"
    );
    assert!(b.get("smartcharged_uptime_seconds") > a.get("smartcharged_uptime_seconds"));
    assert_eq!(b.sum_of("smartcharged_vehicles"), vehicles as f64);
    r.daemon.shutdown(&r.clock).await.unwrap();
}
