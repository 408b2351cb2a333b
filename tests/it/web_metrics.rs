//! The read-only TCP listener over a simulated day (paused time,
//! enode-sim): `GET /metrics` read with a Prometheus text parser at two
//! instants, the counters moved by what the day did; and the status page
//! `GET /` loaded in a real headless Chromium.

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
        "smartcharged_month_energy_joules",
        "smartcharged_month_cost",
        "smartcharged_month_saving",
        "smartcharged_month_sessions",
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
    assert_eq!(a.get("smartcharged_month_sessions"), 0.0);
    assert_eq!(a.get("smartcharged_month_energy_joules"), 0.0);

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
    // Every car unplugged in the morning: its session counts in the
    // month's savings, in joules and in the prices' currency.
    assert_eq!(b.get("smartcharged_month_sessions"), vehicles as f64);
    let joules = b.get("smartcharged_month_energy_joules");
    assert!(joules > 3.6e6 * vehicles as f64, "{joules} J");
    let charged = b.get("smartcharged_month_cost{basis=\"charged\",currency=\"EUR\"}");
    let at_once = b.get("smartcharged_month_cost{basis=\"at_once\",currency=\"EUR\"}");
    assert!(charged > 0.0 && at_once >= charged, "{charged} {at_once}");
    let saving = b.get("smartcharged_month_saving{currency=\"EUR\"}");
    assert!((saving - (at_once - charged)).abs() < 1e-9, "{saving}");
    r.daemon.shutdown().await.unwrap();
}

/// The `chromium` binary, or a failure that says how to get it: CI
/// installs Debian's `chromium` (`.ci/run`), so a missing browser is a
/// broken setup, not a reason to skip.
fn chromium() -> std::path::PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .expect(
            "the status-page test needs a headless browser: `chromium` is not on PATH \
             (Debian: apt-get install -y chromium; .ci/run installs it)",
        )
}

/// What headless Chromium made of a page: the DOM after load, and its
/// log (console messages included).
struct Browsed {
    dom: String,
    log: String,
}

impl Browsed {
    /// The browser's console lines (`INFO:CONSOLE:1] "..."`, any level:
    /// errors, CSP violations and failed loads are all logged there).
    fn console(&self) -> Vec<&str> {
        self.log
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .collect()
    }
}

/// Loads `url` in headless Chromium with a fresh profile. Runs on the
/// blocking pool: tokio's paused clock does not advance while it runs, and
/// the daemon answers.
async fn browse(url: &str) -> Browsed {
    let mut cmd = std::process::Command::new(chromium());
    let profile = tempfile::tempdir().unwrap();
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    cmd.arg("--dump-dom").arg(url);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("cannot run chromium");
    drop(profile);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed on {url}: {log}");
    Browsed {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        log,
    }
}

/// The status page in a real browser, in the evening of the simulated
/// day: it loads without console messages (no error, no blocked asset),
/// and the DOM shows every vehicle with its explanation and each of its
/// planned blocks (in the chart and in the list), the "now" line and the
/// zone.
#[tokio::test(start_paused = true)]
async fn status_page_in_headless_chromium() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let r = fleet::start_with(
        fleet::scenario(2, 4),
        "",
        &format!("\n[http]\nlisten = \"{addr}\"\n"),
    )
    .await;
    r.daemon.serve_http(listener);
    // 21:00 UTC: every car plugged in (the last at 18:21), plans made.
    r.clock.sleep(Duration::from_secs(9 * 3600)).await;
    let snap = r.daemon.read_model().snapshot();
    assert_eq!(snap.vehicles.len(), 4);

    let resp = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");

    // The console check can fail: a page that logs is caught.
    let probe = browse(
        "data:text/html,%3Cp%3Ex%3C/p%3E%3Cscript%3Econsole.error(%22probe-7%22)%3C/script%3E",
    )
    .await;
    assert!(
        probe.console().iter().any(|l| l.contains("probe-7")),
        "console output is not in chromium's log: {}",
        probe.log
    );

    // Scripts cannot run on the page (its CSP forbids them, checked
    // above), so what the browser shows is what it shows without
    // JavaScript. (Chromium's --dump-dom itself needs script to be on.)
    let page = browse(&format!("http://{addr}/")).await;
    assert!(
        page.console().is_empty(),
        "console messages: {:?}",
        page.console()
    );
    let dom = &page.dom;
    assert!(dom.contains("<h1>smartcharged</h1>"), "{dom}\n{}", page.log);
    assert!(dom.contains(">Europe/Berlin</span>"), "{dom}");
    for v in &snap.vehicles {
        let start = dom
            .find(&format!("data-vehicle=\"{}\"", v.id))
            .unwrap_or_else(|| panic!("{} is not on the page: {dom}", v.id));
        let card = &dom[start..start + dom[start..].find("</article>").unwrap()];
        assert!(card.contains(&v.explanation.text), "{}: {card}", v.id);
        let plan = v.plan.as_ref().expect("a plan in the evening");
        assert!(!plan.blocks.is_empty(), "{}", v.id);
        for b in &plan.blocks {
            let attrs = format!(
                "data-start=\"{}\" data-end=\"{}\"",
                b.start.to_rfc3339(),
                b.end.to_rfc3339()
            );
            // Once as a shaded band of the chart, once in the list.
            assert_eq!(
                card.matches(&attrs).count(),
                2,
                "{}: {attrs} in {card}",
                v.id
            );
        }
        assert!(card.contains(">now</text>"), "{card}");
    }
    r.daemon.shutdown().await.unwrap();
}

/// A mistyped `?page=` shows a page (the first), not a bare text error,
/// and every answer of the listener, errors included, carries the page's
/// security headers.
#[tokio::test(start_paused = true)]
async fn a_bad_page_number_shows_the_page_and_errors_keep_the_headers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let r = fleet::start(fleet::scenario(1, 1), "").await;
    r.daemon.serve_http(listener);
    r.clock.sleep(Duration::from_secs(60)).await;
    let http = reqwest::Client::new();
    let secure = |resp: &reqwest::Response, what: &str| {
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{what}: {csp}");
    };
    for q in [
        "page=-1",
        "page=abc",
        "page=99999999999999",
        "page=1&page=2",
        "page=%00",
    ] {
        let resp = http
            .get(format!("http://{addr}/?{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{q}");
        secure(&resp, q);
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        let body = resp.text().await.unwrap();
        assert!(body.contains("<h1>smartcharged</h1>"), "{q}: {body}");
    }
    let resp = http.post(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    secure(&resp, "POST /");
    let resp = http
        .get(format!("http://{addr}/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    secure(&resp, "GET /nope");
    r.daemon.shutdown().await.unwrap();
}
