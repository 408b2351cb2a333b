//! The authorization server: grants, PKCE, rotation with replay
//! revocation, the authorize redirect and its refusals.

mod common;

use common::*;
use enode_sim::{AuthorizeError, RefreshPolicy, TokenSet};
use reqwest::StatusCode;

#[tokio::test(start_paused = true)]
async fn client_credentials_by_basic_or_body_and_bad_secret_is_invalid_client() {
    let (sim, http) = start_builtin().await;
    let by_basic = client_token(&sim, &http).await;
    assert!(!by_basic.is_empty());

    let r = http
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: TokenSet = r.json().await.unwrap();
    assert_eq!(t.token_type, "bearer");
    assert_eq!(t.expires_in, 3600);
    assert_eq!(
        t.refresh_token, None,
        "no refresh token for client credentials"
    );

    let r = http
        .post(sim.token_url())
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("www-authenticate"));
    oauth_error(r, 401, "invalid_client").await;

    let r = http
        .post(sim.token_url())
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "unsupported_grant_type").await;
}

#[tokio::test(start_paused = true)]
async fn link_flow_with_pkce_gives_tokens_that_work() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "offline_access all").await;
    assert!(
        t.refresh_token.is_some(),
        "offline_access gives a refresh token"
    );
    assert_eq!(t.scope.as_deref(), Some("offline_access all"));
    let r = get(&sim, &http, &t.access_token, "/me").await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["id"], "alice");
    assert!(me["linkedVendors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["vendor"] == "TESLA" && v["isValid"] == true));
    let s = sim.handle.stats();
    assert_eq!(s.tokens.authorization_code, 1);
    assert_eq!(s.violations.total(), 0, "{:?}", s.recent_violations);
}

#[tokio::test(start_paused = true)]
async fn without_offline_access_there_is_no_refresh_token() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "bob", "all").await;
    assert_eq!(t.refresh_token, None);
}

#[tokio::test(start_paused = true)]
async fn pkce_verifier_is_checked() {
    let (sim, http) = start_builtin().await;
    let (_, challenge) = pkce();
    let pkce_params = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    // A wrong verifier.
    let state = link_state(&sim, &http, "alice").await;
    let q = location_query(&authorize(&sim, &http, &state, "all", &pkce_params).await);
    let code = param(&q, "code").unwrap().to_string();
    let wrong = "x".repeat(43);
    let v = oauth_error(
        exchange(&sim, &http, &code, Some(&wrong)).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("code_verifier"));

    // No verifier at all.
    let state = link_state(&sim, &http, "alice").await;
    let q = location_query(&authorize(&sim, &http, &state, "all", &pkce_params).await);
    let code = param(&q, "code").unwrap().to_string();
    oauth_error(
        exchange(&sim, &http, &code, None).await,
        400,
        "invalid_grant",
    )
    .await;

    // The plain method is refused at the authorize endpoint.
    let state = link_state(&sim, &http, "alice").await;
    let r = authorize(
        &sim,
        &http,
        &state,
        "all",
        &[
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    let q = location_query(&r);
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    assert_eq!(param(&q, "state"), Some(state.as_str()));

    assert_eq!(sim.handle.stats().violations.invalid_grant, 2);
}

#[tokio::test(start_paused = true)]
async fn redirect_uri_must_match_and_codes_are_single_use() {
    let (sim, http) = start_builtin().await;
    let state = link_state(&sim, &http, "alice").await;
    let q = location_query(&authorize(&sim, &http, &state, "offline_access all", &[]).await);
    let code = param(&q, "code").unwrap().to_string();

    let r = http
        .post(sim.token_url())
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:8787/elsewhere"),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "invalid_grant").await;

    let r = exchange(&sim, &http, &code, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let first: TokenSet = r.json().await.unwrap();
    // A second exchange fails and revokes what the first one got.
    oauth_error(
        exchange(&sim, &http, &code, None).await,
        400,
        "invalid_grant",
    )
    .await;
    problem(get(&sim, &http, &first.access_token, "/me").await, 401).await;
    assert_eq!(sim.handle.stats().tokens.grants_revoked, 1);
}

#[tokio::test(start_paused = true)]
async fn refresh_rotates_and_a_replay_revokes_the_whole_grant() {
    let (sim, http) = start_builtin().await;
    let t0 = link(&sim, &http, "alice", "offline_access all").await;
    let rt0 = t0.refresh_token.clone().unwrap();

    let r = refresh(&sim, &http, &rt0).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t1: TokenSet = r.json().await.unwrap();
    let rt1 = t1.refresh_token.clone().unwrap();
    assert_ne!(rt0, rt1, "every refresh returns a new refresh token");
    assert_ne!(t0.access_token, t1.access_token);
    assert_eq!(t1.scope.as_deref(), Some("offline_access all"));

    let r = refresh(&sim, &http, &rt1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2: TokenSet = r.json().await.unwrap();
    assert_eq!(
        get(&sim, &http, &t2.access_token, "/me").await.status(),
        200
    );

    // Replaying the rotated rt1 kills everything of the grant.
    oauth_error(refresh(&sim, &http, &rt1).await, 400, "invalid_grant").await;
    let rt2 = t2.refresh_token.clone().unwrap();
    oauth_error(refresh(&sim, &http, &rt2).await, 400, "invalid_grant").await;
    problem(get(&sim, &http, &t2.access_token, "/me").await, 401).await;

    let s = sim.handle.stats();
    assert_eq!(s.tokens.refresh_token, 2);
    assert_eq!(s.violations.refresh_replay, 1);
    assert_eq!(s.tokens.grants_revoked, 1);
    assert_eq!(s.violations.invalid_grant, 2);
    assert_eq!(s.violations.revoked_token, 1);
    assert_eq!(s.violations.expired_token, 0);

    // Linking again gives a fresh grant.
    let t = link(&sim, &http, "alice", "offline_access all").await;
    assert_eq!(
        refresh(&sim, &http, t.refresh_token.as_deref().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test(start_paused = true)]
async fn without_rotation_the_refresh_token_stays_valid() {
    let (sim, http) = start_builtin().await;
    sim.handle.set_refresh_policy(RefreshPolicy {
        rotate: false,
        ..RefreshPolicy::default()
    });
    let t = link(&sim, &http, "alice", "offline_access all").await;
    let rt = t.refresh_token.unwrap();
    for _ in 0..3 {
        assert_eq!(refresh(&sim, &http, &rt).await.status(), StatusCode::OK);
    }
    assert_eq!(sim.handle.stats().violations.refresh_replay, 0);
}

#[tokio::test(start_paused = true)]
async fn a_grace_period_lets_a_rotated_token_refresh_again_until_it_ends() {
    let (sim, http) = start_builtin().await;
    sim.handle.set_refresh_policy(RefreshPolicy {
        grace_secs: Some(300),
        ..RefreshPolicy::default()
    });
    let t0 = link(&sim, &http, "alice", "offline_access all").await;
    let rt0 = t0.refresh_token.clone().unwrap();
    let r = refresh(&sim, &http, &rt0).await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated_at = sim.handle.now();
    let info = sim.handle.refresh_token_info(&rt0).unwrap();
    assert_eq!((info.seq, info.current_seq), (0, 1));
    assert_eq!(info.used_at, Some(rotated_at));
    assert!(!info.revoked);

    // A client that lost the answer (died before storing it) uses rt0
    // again within the grace period: new tokens, no revocation.
    tokio::time::advance(std::time::Duration::from_secs(299)).await;
    let r = refresh(&sim, &http, &rt0).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2: TokenSet = r.json().await.unwrap();
    assert_eq!(
        get(&sim, &http, &t2.access_token, "/me").await.status(),
        200
    );
    let rt2 = t2.refresh_token.unwrap();
    assert_eq!(refresh(&sim, &http, &rt2).await.status(), StatusCode::OK);

    // The grace period counts from the first use: past it, rt0 is a replay.
    tokio::time::advance(std::time::Duration::from_secs(2)).await;
    oauth_error(refresh(&sim, &http, &rt0).await, 400, "invalid_grant").await;

    let s = sim.handle.stats();
    assert_eq!(s.tokens.refresh_graced, 1);
    assert_eq!(s.tokens.refresh_token, 3);
    assert_eq!(s.violations.refresh_replay, 1);
    assert_eq!(s.tokens.grants_revoked, 1);
    let rotations = sim.handle.rotations();
    let seqs: Vec<_> = rotations
        .iter()
        .map(|r| (r.used_seq, r.new_seq, r.graced))
        .collect();
    assert_eq!(seqs, vec![(0, 1, false), (0, 2, true), (2, 3, false)]);
    assert!(rotations.iter().all(|r| r.user == "alice"));
    assert_eq!(rotations[0].at, rotated_at);
}

#[tokio::test(start_paused = true)]
async fn without_a_grace_period_a_replay_right_after_rotation_revokes() {
    let (sim, http) = start_builtin().await;
    let t0 = link(&sim, &http, "alice", "offline_access all").await;
    let rt0 = t0.refresh_token.clone().unwrap();
    assert_eq!(refresh(&sim, &http, &rt0).await.status(), StatusCode::OK);
    oauth_error(refresh(&sim, &http, &rt0).await, 400, "invalid_grant").await;
    let s = sim.handle.stats();
    assert_eq!(s.tokens.refresh_graced, 0);
    assert_eq!(s.tokens.grants_revoked, 1);
    assert!(sim.handle.refresh_token_info(&rt0).unwrap().revoked);
}

#[tokio::test(start_paused = true)]
async fn authorize_can_be_told_to_refuse() {
    let (sim, http) = start_builtin().await;
    sim.handle
        .set_authorize_error(Some(AuthorizeError::access_denied()));
    let state = link_state(&sim, &http, "alice").await;
    let q = location_query(&authorize(&sim, &http, &state, "all", &[]).await);
    assert_eq!(param(&q, "error"), Some("access_denied"));
    assert!(param(&q, "error_description").is_some());
    assert_eq!(param(&q, "state"), Some(state.as_str()));
    assert_eq!(param(&q, "code"), None);

    // Through the JSON control endpoint, another RFC 6749 4.1.2.1 error.
    let r = http
        .put(format!("{}/_sim/authorize-error", sim.base_url()))
        .json(
            &serde_json::json!({"error": "temporarily_unavailable", "description": "maintenance"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let q = location_query(&authorize(&sim, &http, &state, "all", &[]).await);
    assert_eq!(param(&q, "error"), Some("temporarily_unavailable"));

    sim.handle.set_authorize_error(None);
    let q = location_query(&authorize(&sim, &http, &state, "all", &[]).await);
    assert!(param(&q, "code").is_some());
}

#[tokio::test(start_paused = true)]
async fn authorize_checks_client_redirect_state_and_scope() {
    let (sim, http) = start_builtin().await;
    let state = link_state(&sim, &http, "alice").await;

    // Unknown state: redirected with invalid_request.
    let q = location_query(&authorize(&sim, &http, "forged-state", "all", &[]).await);
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    assert_eq!(param(&q, "state"), Some("forged-state"));

    // Unknown scope.
    let q = location_query(&authorize(&sim, &http, &state, "all everything", &[]).await);
    assert_eq!(param(&q, "error"), Some("invalid_scope"));

    // Unregistered redirect_uri: no redirect at all.
    let r = http
        .get(sim.auth_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "all"),
            ("state", state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!r.headers().contains_key("location"));

    // A linkState works once.
    let q = location_query(&authorize(&sim, &http, &state, "all", &[]).await);
    assert!(param(&q, "code").is_some());
    let q = location_query(&authorize(&sim, &http, &state, "all", &[]).await);
    assert_eq!(param(&q, "error"), Some("invalid_request"));
}

#[tokio::test(start_paused = true)]
async fn deauthorizing_a_user_revokes_its_tokens() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "offline_access all").await;
    let ct = client_token(&sim, &http).await;
    let r = http
        .delete(format!("{}/users/alice/authorization", sim.base_url()))
        .bearer_auth(&ct)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(get(&sim, &http, &t.access_token, "/vehicles").await, 401).await;
    oauth_error(
        refresh(&sim, &http, t.refresh_token.as_deref().unwrap()).await,
        400,
        "invalid_grant",
    )
    .await;

    // A user token cannot manage users.
    let t = link(&sim, &http, "alice", "offline_access all").await;
    let r = http
        .delete(format!("{}/users/alice", sim.base_url()))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    let r = http
        .delete(format!("{}/users/alice", sim.base_url()))
        .bearer_auth(&ct)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(get(&sim, &http, &t.access_token, "/me").await, 401).await;
}

#[tokio::test(start_paused = true)]
async fn grant_tokens_shortcut_seeds_users_without_a_browser() {
    let (sim, http) = start(enode_sim::Scenario::generated(200, 1, 3)).await;
    let sets: Vec<TokenSet> = sim
        .handle
        .user_ids()
        .iter()
        .map(|u| sim.handle.grant_tokens(u, "offline_access all").unwrap())
        .collect();
    assert_eq!(sets.len(), 200);
    let r = refresh(&sim, &http, sets[17].refresh_token.as_deref().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = get(&sim, &http, &sets[42].access_token, "/vehicles").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(sim.handle.grant_tokens("nobody", "all").is_err());
    assert!(sim.handle.grant_tokens("user-0001", "all bogus").is_err());
}

#[tokio::test(start_paused = true)]
async fn two_concurrent_refreshes_of_one_token_kill_the_grant() {
    let (sim, http) = start_builtin().await;
    let t = link(&sim, &http, "alice", "offline_access all").await;
    let rt = t.refresh_token.unwrap();
    let (a, b) = tokio::join!(refresh(&sim, &http, &rt), refresh(&sim, &http, &rt));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);
    let winner: TokenSet = if a.status() == 200 { a } else { b }.json().await.unwrap();
    oauth_error(
        refresh(&sim, &http, winner.refresh_token.as_deref().unwrap()).await,
        400,
        "invalid_grant",
    )
    .await;
    let s = sim.handle.stats();
    assert_eq!(s.violations.refresh_replay, 1);
    assert_eq!(s.tokens.grants_revoked, 1);
}

#[tokio::test(start_paused = true)]
async fn strict_servers_revoke_older_access_tokens_on_refresh() {
    let (sim, http) = start_builtin().await;
    sim.handle.set_refresh_policy(RefreshPolicy {
        revoke_previous_access_tokens: true,
        ..RefreshPolicy::default()
    });
    let t = link(&sim, &http, "alice", "offline_access all").await;
    let r = refresh(&sim, &http, t.refresh_token.as_deref().unwrap()).await;
    let t2: TokenSet = r.json().await.unwrap();
    problem(get(&sim, &http, &t.access_token, "/me").await, 401).await;
    assert_eq!(
        get(&sim, &http, &t2.access_token, "/me").await.status(),
        200
    );
    assert_eq!(sim.handle.stats().violations.revoked_token, 1);
}
