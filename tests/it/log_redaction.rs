//! No log line, at any level down to TRACE and from any crate, carries a
//! token, the client secret, an authorization code or a PKCE verifier.

use crate::common;

use std::time::Duration;

use clock::Clock;
use enode_sim::{Scenario, UserSpec};
use smartcharged::config::TokenConfig;
use smartcharged::daemon::tokens::{TokenError, TokenKeeper};
use smartcharged::enode::Client;
use smartcharged::link::{self, Request};
use smartcharged::store::Store;
use smartcharged::users::UserId;
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn trace_logs_carry_no_secret() {
    let capture = common::Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("first subscriber in this test binary");

    let clock = Clock::starting_at(common::t0());
    let scenario = Scenario {
        access_token_lifetime_secs: 60,
        users: vec![UserSpec::new("alice"), UserSpec::new("bob")],
        ..Scenario::default()
    };
    let sim = enode_sim::spawn(scenario, clock.clone()).await.unwrap();
    let client = Client::new(&common::enode_config(&sim), clock.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let mut secrets: Vec<String> = vec![common::CLIENT_SECRET.to_owned()];

    // Link flow, both users.
    for name in ["alice", "bob"] {
        let user = UserId::new(name).unwrap();
        let started = link::start(
            &client,
            &store,
            &clock,
            Request {
                user: &user,
                vendor: None,
                language: None,
                pkce: true,
                timeout: Duration::from_secs(600),
            },
        )
        .await
        .unwrap();
        let session = store
            .take_link_session(&started.link_state)
            .unwrap()
            .unwrap();
        secrets.push(session.pkce_verifier.clone().unwrap().expose().to_owned());
        store
            .put_link_session(&started.link_state, &session)
            .unwrap();
        let callback = common::consent(&started.authorize_url).await;
        let code = callback
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        secrets.push(code);
        let (_, tokens) = link::complete(&client, &store, &clock, &started.link_state, &callback)
            .await
            .unwrap();
        secrets.push(tokens.access_token.expose().to_owned());
        secrets.push(tokens.refresh_token.unwrap().expose().to_owned());
    }

    // The keeper refreshes for a few token lifetimes; every token it used
    // is collected from the store as it goes.
    let keeper = TokenKeeper::new(
        store.clone(),
        client.clone(),
        clock.clone(),
        TokenConfig {
            refresh_lead: Duration::from_secs(300),
            refresh_jitter: Duration::from_secs(60),
            link_timeout: Duration::from_secs(600),
        },
    );
    keeper.load().unwrap();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(keeper.clone().run(cancel.clone()));
    for _ in 0..20 {
        clock.sleep(Duration::from_secs(15)).await;
        for name in ["alice", "bob"] {
            let t = store.tokens(&UserId::new(name).unwrap()).unwrap().unwrap();
            secrets.push(t.access_token.expose().to_owned());
            secrets.push(t.refresh_token.unwrap().expose().to_owned());
            let token = keeper
                .access_token(&UserId::new(name).unwrap())
                .await
                .unwrap();
            client.me(&token).await.unwrap();
        }
    }
    // A revoked grant: invalid_grant is logged, without the token.
    sim.handle.revoke_user("bob").unwrap();
    let r = keeper.refresh(&UserId::new("bob").unwrap(), None).await;
    assert!(matches!(r, Err(TokenError::NeedsRelink(_))), "{r:?}");
    cancel.cancel();
    run.await.unwrap();

    let logs = capture.text();
    // The capture works and saw the interesting parts.
    assert!(logs.contains("token refreshed"), "no refresh logged");
    assert!(logs.contains("user must link again"), "no relink logged");
    assert!(logs.contains("TRACE"), "no trace-level lines captured");
    secrets.sort();
    secrets.dedup();
    assert!(
        secrets.len() > 20,
        "too few secrets collected: {}",
        secrets.len()
    );
    for s in &secrets {
        assert!(s.len() >= 8, "a secret too short to grep for meaningfully");
        if let Some(line) = logs.lines().find(|l| l.contains(s.as_str())) {
            panic!("a log line carries a secret: {line}");
        }
    }
}
