//! Faults on demand and violation recording: 429 with Retry-After, 5xx,
//! latency on the clock, expired tokens.

mod common;

use std::time::Duration;

use common::*;
use enode_sim::{Fault, FaultKind, Scenario, Stats, Target, Trigger};
use reqwest::StatusCode;

#[tokio::test(start_paused = true)]
async fn rate_limit_with_retry_after_and_early_requests_are_violations() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "offline_access all").await;
    sim.handle
        .rate_limit_next(Some("alice"), 1, Duration::from_secs(30));

    let r = get(&sim, &http, &t.access_token, "/vehicles").await;
    assert_eq!(r.headers()["retry-after"], "30");
    problem(r, 429).await;

    // Too early: answered, but recorded.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        get(&sim, &http, &t.access_token, "/vehicles")
            .await
            .status(),
        200
    );
    let s = sim.handle.stats();
    assert_eq!(s.violations.retry_after_ignored, 1);
    let v = s.recent_violations.last().unwrap();
    assert_eq!(v.user.as_deref(), Some("alice"));

    // After Retry-After elapsed: fine.
    tokio::time::advance(Duration::from_secs(21)).await;
    assert_eq!(
        get(&sim, &http, &t.access_token, "/vehicles")
            .await
            .status(),
        200
    );
    let s = sim.handle.stats();
    assert_eq!(s.violations.retry_after_ignored, 1);
    assert_eq!(s.count("GET /vehicles", 429), 1);
    assert_eq!(s.count("GET /vehicles", 200), 2);
}

#[tokio::test(start_paused = true)]
async fn per_user_faults_spare_other_users() {
    let (sim, http) = start_builtin().await;
    let alice = link(&sim, &http, "alice", "all").await;
    let bob = link(&sim, &http, "bob", "all").await;
    sim.handle
        .rate_limit_next(Some("alice"), 2, Duration::from_secs(5));
    assert_eq!(
        get(&sim, &http, &bob.access_token, "/me").await.status(),
        200
    );
    assert_eq!(
        get(&sim, &http, &alice.access_token, "/me").await.status(),
        429
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        get(&sim, &http, &alice.access_token, "/me").await.status(),
        429
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        get(&sim, &http, &alice.access_token, "/me").await.status(),
        200
    );
    assert_eq!(sim.handle.stats().violations.retry_after_ignored, 0);
}

#[tokio::test(start_paused = true)]
async fn rate_based_faults_are_seeded() {
    async fn run() -> u64 {
        let (sim, http) = start(Scenario::generated(3, 1, 11)).await;
        let t = sim.handle.grant_tokens("user-0001", "all").unwrap();
        sim.handle
            .rate_limit_rate(None, 0.3, Duration::from_secs(0));
        for _ in 0..100 {
            get(&sim, &http, &t.access_token, "/vehicles").await;
        }
        sim.handle.stats().count("GET /vehicles", 429)
    }
    let a = run().await;
    assert!((15..=45).contains(&a), "{a} of 100 at p = 0.3");
    assert_eq!(a, run().await, "same seed, same faults");
}

#[tokio::test(start_paused = true)]
async fn server_errors_for_the_next_calls_on_api_and_token_endpoint() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "offline_access all").await;
    sim.handle.server_error_next(Target::Api, None, 2, 503);
    problem(get(&sim, &http, &t.access_token, "/me").await, 503).await;
    problem(get(&sim, &http, &t.access_token, "/me").await, 503).await;
    assert_eq!(get(&sim, &http, &t.access_token, "/me").await.status(), 200);

    sim.handle
        .server_error_next(Target::Token, Some("alice"), 1, 500);
    let rt = t.refresh_token.unwrap();
    oauth_error(refresh(&sim, &http, &rt).await, 500, "server_error").await;
    // The failed call did not rotate: the same refresh token still works.
    assert_eq!(refresh(&sim, &http, &rt).await.status(), StatusCode::OK);
    assert_eq!(sim.handle.stats().violations.refresh_replay, 0);
}

#[tokio::test(start_paused = true)]
async fn latency_is_clock_time() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "all").await;
    sim.handle.add_latency(Target::Api, Duration::from_secs(20));
    let before = sim.handle.now();
    assert_eq!(get(&sim, &http, &t.access_token, "/me").await.status(), 200);
    let waited = sim.handle.now() - before;
    assert!(waited >= chrono::TimeDelta::seconds(20), "{waited}");
    assert!(waited < chrono::TimeDelta::seconds(21), "{waited}");
}

#[tokio::test(start_paused = true)]
async fn expired_tokens_are_told_apart_from_unknown_ones() {
    let (sim, http) = start_builtin().await;
    sim.handle
        .set_access_token_lifetime(Duration::from_secs(60));
    let t = link(&sim, &http, "alice", "offline_access all").await;
    assert_eq!(t.expires_in, 60);
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(get(&sim, &http, &t.access_token, "/me").await.status(), 200);
    tokio::time::advance(Duration::from_secs(2)).await;
    let p = problem(get(&sim, &http, &t.access_token, "/me").await, 401).await;
    assert!(p["detail"].as_str().unwrap().contains("expired"));
    let s = sim.handle.stats();
    assert_eq!(s.violations.expired_token, 1);
    assert_eq!(s.violations.unknown_token, 0);

    // Refreshing gives a working token again.
    let r = refresh(&sim, &http, t.refresh_token.as_deref().unwrap()).await;
    let t2: enode_sim::TokenSet = r.json().await.unwrap();
    assert_eq!(
        get(&sim, &http, &t2.access_token, "/me").await.status(),
        200
    );
}

#[tokio::test(start_paused = true)]
async fn faults_and_stats_over_http() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "all").await;
    let fault = Fault {
        kind: FaultKind::RateLimit {
            retry_after_secs: Some(7),
        },
        user: None,
        target: Target::Api,
        trigger: Trigger::Next { n: 1 },
    };
    let r = http
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = get(&sim, &http, &t.access_token, "/vehicles").await;
    assert_eq!(r.headers()["retry-after"], "7");

    let r = http
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&serde_json::json!({"kind": {"type": "server_error", "status": 502}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::advance(Duration::from_secs(7)).await;
    assert_eq!(get(&sim, &http, &t.access_token, "/me").await.status(), 502);
    let r = http
        .delete(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(get(&sim, &http, &t.access_token, "/me").await.status(), 200);

    let stats: Stats = http
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.count("GET /vehicles", 429), 1);
    assert_eq!(stats.count("GET /me", 502), 1);
    assert_eq!(stats.count("GET /me", 200), 1);
    assert_eq!(stats.count("POST /oauth2/token", 200), 2);
    assert_eq!(stats, sim.handle.stats());
}

fn rule(kind: FaultKind, target: Target, n: u32) -> Fault {
    Fault {
        kind,
        user: None,
        target,
        trigger: Trigger::Next { n },
    }
}

#[tokio::test(start_paused = true)]
async fn rate_limit_without_retry_after_sends_no_header_and_starts_no_wait() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "all").await;
    let r = http
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&serde_json::json!({"kind": {"type": "rate_limit"}, "trigger": {"type": "next", "n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = get(&sim, &http, &t.access_token, "/vehicles").await;
    assert!(r.headers().get("retry-after").is_none(), "{r:?}");
    problem(r, 429).await;
    // No Retry-After was given, so an immediate retry is no violation.
    assert_eq!(
        get(&sim, &http, &t.access_token, "/vehicles")
            .await
            .status(),
        200
    );
    let s = sim.handle.stats();
    assert_eq!(s.violations.retry_after_ignored, 0);
    assert_eq!(s.injected.get("rate_limit"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn connection_reset_closes_without_an_answer_and_does_nothing() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "offline_access all").await;
    sim.handle
        .add_fault(rule(FaultKind::ConnectionReset, Target::Any, 2));
    let e = http
        .get(format!("{}/vehicles", sim.base_url()))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .expect_err("no answer");
    assert!(!e.is_status() && !e.is_timeout(), "{e:?}");
    // On the token endpoint the refresh does not take effect: the same
    // refresh token still works afterwards, and is no replay.
    let rt = t.refresh_token.unwrap();
    let e = http
        .post(sim.token_url())
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
        .send()
        .await
        .expect_err("no answer");
    assert!(!e.is_status(), "{e:?}");
    assert_eq!(refresh(&sim, &http, &rt).await.status(), StatusCode::OK);
    let s = sim.handle.stats();
    assert_eq!(s.count("GET /vehicles", 0), 1, "{:?}", s.requests);
    assert_eq!(s.count("POST /oauth2/token", 0), 1, "{:?}", s.requests);
    assert_eq!(s.injected.get("connection_reset"), Some(&2));
    assert_eq!(s.violations.refresh_replay, 0);
    assert_eq!(s.tokens.refresh_token, 1);
}

#[tokio::test(start_paused = true)]
async fn malformed_bodies_are_200_with_a_useless_body() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "all").await;
    sim.handle.add_fault(rule(
        FaultKind::MalformedBody { body: None },
        Target::Api,
        1,
    ));
    sim.handle.add_fault(rule(
        FaultKind::MalformedBody {
            body: Some(r#"{"unexpected": true}"#.into()),
        },
        Target::Api,
        1,
    ));
    let r = get(&sim, &http, &t.access_token, "/vehicles").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body = r.bytes().await.unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
    assert!(String::from_utf8_lossy(&body).contains("502 Bad Gateway"));
    let r = get(&sim, &http, &t.access_token, "/vehicles").await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(!v.is_array(), "{v}");
    // Then the real answer again.
    let r = get(&sim, &http, &t.access_token, "/vehicles").await;
    assert!(r.json::<serde_json::Value>().await.unwrap().is_array());
    assert_eq!(sim.handle.stats().injected.get("malformed_body"), Some(&2));
}

#[tokio::test(start_paused = true)]
async fn oversized_bodies_have_the_length_asked_for() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "all").await;
    let bytes = (8 << 20) + 3;
    sim.handle
        .add_fault(rule(FaultKind::OversizedBody { bytes }, Target::Api, 1));
    let mut r = get(&sim, &http, &t.access_token, "/vehicles").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(bytes));
    let (mut n, mut first, mut last) = (0u64, None, 0u8);
    while let Some(chunk) = r.chunk().await.unwrap() {
        first = first.or(chunk.first().copied());
        last = chunk.last().copied().unwrap_or(last);
        n += chunk.len() as u64;
    }
    assert_eq!(n, bytes);
    assert_eq!((first, last), (Some(b'['), b']'));
    let s = sim.handle.stats();
    assert_eq!(s.injected.get("oversized_body"), Some(&1));
    assert_eq!(s.count("GET /vehicles", 200), 1);
}

#[tokio::test(start_paused = true)]
async fn new_kinds_round_trip_as_json() {
    for kind in [
        FaultKind::ConnectionReset,
        FaultKind::MalformedBody { body: None },
        FaultKind::OversizedBody { bytes: 10 },
        FaultKind::RateLimit {
            retry_after_secs: None,
        },
    ] {
        let f = rule(kind, Target::Token, 1);
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<Fault>(&text).unwrap(), f, "{text}");
    }
    let f: Fault = serde_json::from_str(
        r#"{"kind":{"type":"oversized_body","bytes":8388608},"target":"token"}"#,
    )
    .unwrap();
    assert_eq!(f.kind, FaultKind::OversizedBody { bytes: 8 << 20 });
    assert_eq!(f.trigger, Trigger::Always);
}

#[tokio::test(start_paused = true)]
async fn server_errors_with_retry_after_start_a_wait() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "all").await;
    for status in [500, 502, 503] {
        sim.handle.add_fault(rule(
            FaultKind::ServerError {
                status,
                retry_after_secs: Some(20),
            },
            Target::Api,
            1,
        ));
        let r = get(&sim, &http, &t.access_token, "/me").await;
        assert_eq!(r.headers()["retry-after"], "20");
        problem(r, status).await;
        tokio::time::advance(Duration::from_secs(20)).await;
    }
    assert_eq!(get(&sim, &http, &t.access_token, "/me").await.status(), 200);
    let s = sim.handle.stats();
    assert_eq!(s.violations.retry_after_ignored, 0);
    assert_eq!(s.injected.get("server_error"), Some(&3));
    assert_eq!(s.user_requests.get("alice"), Some(&4));
}
