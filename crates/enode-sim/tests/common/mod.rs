//! Helpers shared by the integration tests: a simulator on 127.0.0.1:0
//! with a virtual clock, a reqwest client that follows no redirects, and
//! the link flow.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use clock::Clock;
use enode_sim::{Scenario, Sim, TokenSet};
use reqwest::{redirect, Client, Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "smartcharged";
pub const SECRET: &str = "sim-secret";
pub const REDIRECT: &str = "http://127.0.0.1:8787/callback";

/// The scenario start used by every test.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 16, 0, 0).unwrap()
}

/// A simulator for `scenario` on a virtual clock at [`t0`], and a client.
pub async fn start(mut scenario: Scenario) -> (Sim, Client) {
    scenario.start = Some(t0());
    let sim = enode_sim::spawn(scenario, Clock::starting_at(t0()))
        .await
        .expect("simulator starts");
    let http = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    (sim, http)
}

/// The built-in scenario.
pub async fn start_builtin() -> (Sim, Client) {
    start(Scenario::builtin()).await
}

/// A client credentials token.
pub async fn client_token(sim: &Sim, http: &Client) -> String {
    let r = http
        .post(sim.token_url())
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<TokenSet>().await.unwrap().access_token
}

/// `POST /users/{user}/link`: the linkState.
pub async fn link_state(sim: &Sim, http: &Client, user: &str) -> String {
    let ct = client_token(sim, http).await;
    let r = http
        .post(format!("{}/users/{user}/link", sim.base_url()))
        .bearer_auth(ct)
        .json(&serde_json::json!({"vendor": "TESLA", "forceLanguage": "nb-NO"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["linkState"].as_str().unwrap().to_string()
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_string();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// `GET /oauth2/auth` with `extra` query pairs: the response (a redirect).
pub async fn authorize(
    sim: &Sim,
    http: &Client,
    state: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", state),
    ];
    q.extend_from_slice(extra);
    http.get(sim.auth_url()).query(&q).send().await.unwrap()
}

/// The query pairs of a redirect response's Location.
pub fn location_query(r: &Response) -> Vec<(String, String)> {
    assert_eq!(r.status(), StatusCode::FOUND, "a redirect");
    let loc = r.headers()["location"].to_str().unwrap();
    let u = url::Url::parse(loc).unwrap();
    assert_eq!(u.path(), "/callback");
    u.query_pairs().into_owned().collect()
}

/// The value of `key` in query pairs.
pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Exchanges `code` at the token endpoint (client auth in the body).
pub async fn exchange(sim: &Sim, http: &Client, code: &str, verifier: Option<&str>) -> Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    http.post(sim.token_url()).form(&form).send().await.unwrap()
}

/// The whole link flow with PKCE: user tokens for `scope`.
pub async fn link(sim: &Sim, http: &Client, user: &str, scope: &str) -> TokenSet {
    let state = link_state(sim, http, user).await;
    let (verifier, challenge) = pkce();
    let r = authorize(
        sim,
        http,
        &state,
        scope,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let q = location_query(&r);
    assert_eq!(param(&q, "state"), Some(state.as_str()));
    let code = param(&q, "code").expect("a code").to_string();
    let r = exchange(sim, http, &code, Some(&verifier)).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// A refresh grant (client auth by Basic).
pub async fn refresh(sim: &Sim, http: &Client, refresh_token: &str) -> Response {
    http.post(sim.token_url())
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap()
}

/// GET `path` with a bearer token.
pub async fn get(sim: &Sim, http: &Client, token: &str, path: &str) -> Response {
    http.get(format!("{}{path}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Asserts an RFC 7807 answer with `status`; returns its body.
pub async fn problem(r: Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let v: Value = r.json().await.unwrap();
    for k in ["type", "title", "detail"] {
        assert!(v[k].is_string(), "problem without {k}: {v}");
    }
    v
}

/// Asserts an RFC 6749 5.2 error with `status` and `error`.
pub async fn oauth_error(r: Response, status: u16, error: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], error, "{v}");
    assert!(v["error_description"].is_string(), "{v}");
    v
}
