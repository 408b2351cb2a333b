//! Each provider's HTTP client against a local server on 127.0.0.1 that
//! records the request (path, query, headers, body) and can fail: a clear
//! error, and the cached curve stays in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveTime, Utc};
use clock::Clock;
use smartcharged::prices::cache::{MemoryCache, PriceCache};
use smartcharged::prices::schedule::{FeedSettings, PriceFeed};
use smartcharged::prices::tariff::Tariff;
use smartcharged::prices::{
    awattar, energidataservice, entsoe, nordpool, octopus, tibber, Basis, PriceSource, Quote, Slot,
    SourceError,
};
use smartcharged::secret::Secret;

const TOKEN: &str = "tok-3f9a-secret";

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: String,
}

/// What the server answers, in order; the last one repeats.
#[derive(Clone)]
enum Reply {
    Body(&'static str, String),
    Status(u16, String),
    Hang,
}

#[derive(Clone)]
struct Server {
    replies: Arc<Mutex<Vec<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn handle(
    State(s): State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    s.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_string(),
        query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = {
        let mut r = s.replies.lock().unwrap();
        if r.len() > 1 {
            r.remove(0)
        } else {
            r[0].clone()
        }
    };
    match reply {
        Reply::Body(ct, b) => ([("content-type", ct)], b).into_response(),
        Reply::Status(code, b) => (StatusCode::from_u16(code).unwrap(), b).into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

/// Starts a server on 127.0.0.1:0; returns its base URL and the requests seen.
async fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let server = Server {
        replies: Arc::new(Mutex::new(replies)),
        seen: Arc::default(),
    };
    let seen = server.seen.clone();
    let app = axum::Router::new().fallback(handle).with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/data/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn awattar_request_and_parse() {
    let (base, seen) = serve(vec![Reply::Body(
        "application/json",
        fixture("awattar/marketdata_de_20240614-16.json"),
    )])
    .await;
    let q = awattar::Awattar::new(&base, TIMEOUT)
        .fetch(t("2024-06-13T22:00:00Z"), t("2024-06-16T22:00:00Z"))
        .await
        .unwrap();
    assert_eq!(q.slots.len(), 72);
    let r = &seen.lock().unwrap()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/v1/marketdata")
    );
    assert_eq!(r.query["start"], "1718316000000");
    assert_eq!(r.query["end"], "1718575200000");
    assert!(r.headers.get("authorization").is_none());
}

#[tokio::test]
async fn entsoe_token_goes_in_the_query_and_never_into_errors() {
    let (base, seen) = serve(vec![
        Reply::Body("application/xml", fixture("entsoe/A44_DE-LU_PT15M_2025-10-31_2025-11-01.xml")),
        Reply::Status(400, "<?xml version=\"1.0\"?><Acknowledgement_MarketDocument><Reason><code>999</code></Reason></Acknowledgement_MarketDocument>".into()),
        Reply::Status(401, "unauthorized".into()),
    ])
    .await;
    let src = entsoe::Entsoe::new(&base, "10Y1001A1001A82H", Secret::new(TOKEN), TIMEOUT);
    let (from, to) = (t("2025-10-30T23:00:00Z"), t("2025-11-01T23:00:00Z"));
    assert_eq!(src.fetch(from, to).await.unwrap().slots.len(), 192);
    {
        let r = &seen.lock().unwrap()[0];
        assert_eq!(r.path, "/api");
        assert_eq!(r.query["securityToken"], TOKEN);
        assert_eq!(r.query["documentType"], "A44");
        assert_eq!(r.query["in_Domain"], "10Y1001A1001A82H");
        assert_eq!(r.query["out_Domain"], "10Y1001A1001A82H");
        assert_eq!(r.query["periodStart"], "202510302300");
        assert_eq!(r.query["periodEnd"], "202511012300");
        assert!(r.headers.get("authorization").is_none());
    }
    assert!(matches!(
        src.fetch(from, to).await,
        Err(SourceError::NotPublished)
    ));
    let e = src.fetch(from, to).await.unwrap_err();
    assert!(matches!(e, SourceError::Unauthorized(401)), "{e}");
    // A connection failure must not print the URL with the token.
    let dead = entsoe::Entsoe::new(
        "http://127.0.0.1:1",
        "10Y1001A1001A82H",
        Secret::new(TOKEN),
        TIMEOUT,
    );
    let e = dead.fetch(from, to).await.unwrap_err();
    assert!(matches!(e, SourceError::Unavailable(_)), "{e}");
    assert!(!format!("{e} {e:?}").contains(TOKEN), "{e:?}");
    assert!(!format!("{dead:?}").contains(TOKEN));
}

#[tokio::test]
async fn nordpool_asks_per_delivery_day_and_stops_at_204() {
    let (base, seen) = serve(vec![
        Reply::Body(
            "application/json",
            fixture("nordpool/DayAheadPriceIndices_SE3_PT15M_SEK_2025-10-01.json"),
        ),
        Reply::Status(204, String::new()),
    ])
    .await;
    let src = nordpool::NordPool::new(&base, "SE3", "SEK", TIMEOUT);
    let q = src
        .fetch(t("2025-09-30T22:00:00Z"), t("2025-10-02T22:00:00Z"))
        .await
        .unwrap();
    assert_eq!((q.slots.len(), q.currency.as_str()), (96, "SEK"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, "/api/DayAheadPrices");
    assert_eq!(seen[0].query["date"], "2025-10-01");
    assert_eq!(seen[1].query["date"], "2025-10-02");
    assert_eq!(seen[0].query["market"], "DayAhead");
    assert_eq!(seen[0].query["deliveryArea"], "SE3");
    assert_eq!(seen[0].query["currency"], "SEK");
}

#[tokio::test]
async fn tibber_posts_graphql_with_a_bearer_token() {
    let (base, seen) = serve(vec![
        Reply::Body(
            "application/json",
            fixture("tibber/priceInfo_hourly_today_tomorrow_2025-05-18.json"),
        ),
        Reply::Body("application/json", "{\"data\": {\"viewer\": ".into()),
    ])
    .await;
    let src = tibber::Tibber::new(
        &base,
        Secret::new(TOKEN),
        Some("home-1".into()),
        "EUR",
        TIMEOUT,
    );
    let (from, to) = (t("2025-05-17T22:00:00Z"), t("2025-05-19T22:00:00Z"));
    let q = src.fetch(from, to).await.unwrap();
    assert_eq!((q.basis, q.slots.len()), (Basis::ConsumerPerKwh, 48));
    {
        let r = &seen.lock().unwrap()[0];
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/v1-beta/gql")
        );
        assert_eq!(
            r.headers["authorization"],
            format!("Bearer {TOKEN}").as_str()
        );
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let query = body["query"].as_str().unwrap();
        assert!(
            query.contains("home(id: \"home-1\")") && query.contains("priceInfo"),
            "{query}"
        );
        assert!(r.query.is_empty());
    }
    let e = src.fetch(from, to).await.unwrap_err();
    assert!(matches!(e, SourceError::Malformed(_)), "{e}");
    assert!(
        e.to_string().starts_with("malformed response: tibber:"),
        "{e}"
    );
}

#[tokio::test]
async fn energidataservice_filters_by_area() {
    let body = r#"{"total":2,"records":[
        {"TimeUTC":"2025-10-01T22:00:00","PriceArea":"DK1","DayAheadPriceEUR":93.8,"DayAheadPriceDKK":700.1},
        {"TimeUTC":"2025-10-01T22:15:00","PriceArea":"DK1","DayAheadPriceEUR":-0.47,"DayAheadPriceDKK":-3.5}]}"#;
    let (base, seen) = serve(vec![
        Reply::Body("application/json", body.into()),
        Reply::Status(503, "maintenance".into()),
    ])
    .await;
    let src = energidataservice::EnergiDataService::new(&base, "DK1", "DKK", TIMEOUT);
    let (from, to) = (t("2025-10-01T22:00:00Z"), t("2025-10-03T22:00:00Z"));
    let q = src.fetch(from, to).await.unwrap();
    assert_eq!(q.slots[1].price, -3.5);
    {
        let r = &seen.lock().unwrap()[0];
        assert_eq!(r.path, "/dataset/DayAheadPrices");
        assert_eq!(r.query["filter"], r#"{"PriceArea":["DK1"]}"#);
        assert_eq!(r.query["start"], "2025-10-01T22:00");
        assert_eq!(r.query["end"], "2025-10-03T22:00");
        assert_eq!(r.query["timezone"], "utc");
    }
    let e = src.fetch(from, to).await.unwrap_err();
    assert_eq!(e.to_string(), "provider unavailable: http 503: maintenance");
    assert!(e.is_transient());
}

#[tokio::test]
async fn octopus_unit_rates_path_and_period() {
    let (base, seen) = serve(vec![
        Reply::Body(
            "application/json",
            fixture("octopus/standard-unit-rates_nonagile_sample.json"),
        ),
        Reply::Status(
            404,
            "{\"detail\":\"No EnergyProduct matches the given query.\"}".into(),
        ),
    ])
    .await;
    let src = octopus::Octopus::new(&base, "AGILE-24-10-01", "E-1R-AGILE-24-10-01-C", TIMEOUT);
    let (from, to) = (t("2020-10-31T00:00:00Z"), t("2020-11-02T00:00:00Z"));
    let q = src.fetch(from, to).await.unwrap();
    assert_eq!(q.slots.len(), 2);
    {
        let r = &seen.lock().unwrap()[0];
        assert_eq!(r.path, "/v1/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-C/standard-unit-rates/");
        assert_eq!(r.query["period_from"], "2020-10-31T00:00:00Z");
        assert_eq!(r.query["period_to"], "2020-11-02T00:00:00Z");
    }
    let e = src.fetch(from, to).await.unwrap_err();
    assert!(
        matches!(e, SourceError::Rejected { status: 404, .. }),
        "{e}"
    );
    assert!(!e.is_transient());
}

#[tokio::test(start_paused = true)]
async fn a_hanging_server_times_out() {
    let (base, _) = serve(vec![Reply::Hang]).await;
    let src = awattar::Awattar::new(&base, Duration::from_secs(7));
    let e = src
        .fetch(t("2024-06-13T22:00:00Z"), t("2024-06-14T22:00:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(e, SourceError::Timeout(_)), "{e}");
    assert_eq!(e.to_string(), "request timed out after 7s");
}

/// Every provider, pointed at `base`.
fn all_sources(base: &str) -> Vec<Arc<dyn PriceSource>> {
    vec![
        Arc::new(awattar::Awattar::new(base, TIMEOUT)),
        Arc::new(entsoe::Entsoe::new(
            base,
            "10YAT-APG------L",
            Secret::new(TOKEN),
            TIMEOUT,
        )),
        Arc::new(nordpool::NordPool::new(base, "SE3", "EUR", TIMEOUT)),
        Arc::new(tibber::Tibber::new(
            base,
            Secret::new(TOKEN),
            None,
            "EUR",
            TIMEOUT,
        )),
        Arc::new(energidataservice::EnergiDataService::new(
            base, "DK1", "EUR", TIMEOUT,
        )),
        Arc::new(octopus::Octopus::new(base, "P", "T", TIMEOUT)),
    ]
}

#[tokio::test]
async fn on_500_or_garbage_every_provider_keeps_the_cached_curve() {
    let now = t("2024-06-14T10:00:00Z");
    for reply in [
        Reply::Status(500, "oops".into()),
        Reply::Body("application/json", "<html>".into()),
    ] {
        let (base, seen) = serve(vec![reply]).await;
        for source in all_sources(&base) {
            let cached = Quote::new(
                Basis::SpotPerMwh,
                "EUR",
                vec![Slot {
                    start: now,
                    end: now + chrono::TimeDelta::hours(1),
                    price: 50.0,
                }],
            )
            .unwrap();
            let cache = Arc::new(MemoryCache::new());
            cache.save(&source.id(), &cached).unwrap();
            let settings = FeedSettings {
                market_tz: chrono_tz::Europe::Berlin,
                publication: NaiveTime::from_hms_opt(12, 45, 0).unwrap(),
                tomorrow_ends: NaiveTime::MIN,
                retry_every: Duration::from_secs(600),
                retry_max: Duration::from_secs(3600),
                tz: chrono_tz::Europe::Berlin,
                warn_after: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
            };
            let (mut feed, rx) = PriceFeed::new(
                source.clone(),
                Tariff::spot_only("EUR"),
                cache.clone(),
                Clock::starting_at(now),
                settings,
            );
            feed.load_cached();
            feed.fetch("test").await;
            let curve = rx.borrow().clone().expect("the cached curve is published");
            assert_eq!(curve.price_at(now), Some(0.05), "{}", source.id());
            assert_eq!(
                cache.load(&source.id()).unwrap(),
                Some(cached),
                "{}",
                source.id()
            );
            // And the error the source gives is the clear one.
            let e = source
                .fetch(now, now + chrono::TimeDelta::days(1))
                .await
                .unwrap_err();
            assert!(
                matches!(e, SourceError::Unavailable(_) | SourceError::Malformed(_)),
                "{}: {e}",
                source.id()
            );
        }
        assert!(seen.lock().unwrap().len() >= 12);
    }
}
