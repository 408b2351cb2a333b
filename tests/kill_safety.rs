//! Kill safety of token rotation: the keeper's tasks are dropped at
//! arbitrary points of a refresh storm, again and again, each time on a
//! freshly reopened store; afterwards every user can still refresh.
//!
//! What is dropped: the refresh loops and every caller waiting for a token,
//! wherever they are. What cannot be dropped by design is the section from
//! sending a refresh to flushing its answer; the test lets those finish as
//! a process that loses its tasks would, then reopens the store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use clock::Clock;
use enode_sim::{Scenario, UserSpec};
use rand::{rngs::StdRng, Rng, SeedableRng};
use smartcharged::config::TokenConfig;
use smartcharged::daemon::tokens::TokenKeeper;
use smartcharged::enode::Client;
use smartcharged::store::Store;
use smartcharged::users::{User, UserId, UserStatus};
use tokio_util::sync::CancellationToken;

const USERS: usize = 100;
const ROUNDS: usize = 25;
/// Callers that force refreshes of random users, to make a storm.
const STORMERS: usize = 10;

#[tokio::test(start_paused = true)]
async fn dropping_tasks_mid_storm_loses_no_user() {
    let clock = Clock::starting_at(common::t0());
    let scenario = Scenario {
        access_token_lifetime_secs: 60,
        users: (0..USERS)
            .map(|i| UserSpec::new(format!("u{i:03}")))
            .collect(),
        ..Scenario::default()
    };
    let sim = enode_sim::spawn(scenario, clock.clone()).await.unwrap();
    // Slow answers from the token endpoint (after the refresh took effect
    // there): at any instant many refreshes are in flight.
    sim.handle
        .add_latency(enode_sim::Target::Token, Duration::from_millis(1500));
    let client = Client::new(&common::enode_config(&sim), clock.clone()).unwrap();
    // A real disk: flushes are real fsyncs here.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let ids: Vec<UserId> = (0..USERS)
        .map(|i| UserId::new(format!("u{i:03}")).unwrap())
        .collect();
    {
        let store = Store::open(&path).unwrap();
        for id in &ids {
            let user = User {
                id: id.clone(),
                status: UserStatus::Active,
                linked_at: clock.now(),
                vendor: None,
            };
            store
                .save_linked_user(&user, &common::granted(&sim, id.as_str(), clock.now()))
                .unwrap();
        }
    }
    let config = TokenConfig {
        refresh_lead: Duration::from_secs(300),
        refresh_jitter: Duration::from_secs(60),
        link_timeout: Duration::from_secs(1800),
    };
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut refreshes_before = 0;
    for round in 0..ROUNDS {
        let store = Store::open(&path).unwrap();
        let keeper = TokenKeeper::new(store, client.clone(), clock.clone(), config.clone());
        assert_eq!(
            keeper.load().unwrap(),
            USERS,
            "round {round}: a user was lost"
        );
        let run = tokio::spawn(keeper.clone().run(CancellationToken::new()));
        let mut storm = Vec::new();
        for s in 0..STORMERS {
            let keeper = Arc::clone(&keeper);
            let ids = ids.clone();
            let mut rng = StdRng::seed_from_u64((round * STORMERS + s) as u64);
            storm.push(tokio::spawn(async move {
                loop {
                    let user = &ids[rng.gen_range(0..ids.len())];
                    if rng.gen_bool(0.5) {
                        keeper.refresh(user, None).await.expect("forced refresh");
                    } else {
                        keeper.access_token(user).await.expect("token");
                    }
                    let pause = rng.gen_range(0..2_000);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }));
        }
        // Let it run for an arbitrary while, then drop everything at an
        // arbitrary point of whatever is in flight at that instant.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1..150_000))).await;
        for _ in 0..rng.gen_range(0..64) {
            tokio::task::yield_now().await;
        }
        run.abort();
        for t in &storm {
            t.abort();
        }
        let mut results = vec![run.await];
        for t in storm {
            results.push(t.await.map(|_| ()));
        }
        for r in results {
            if let Err(e) = r {
                assert!(e.is_cancelled(), "round {round}: a task failed: {e}");
            }
        }
        keeper.drain().await;
        // Aborted tasks are dropped when the runtime next reaches them.
        for _ in 0..1_000 {
            if Arc::strong_count(&keeper) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            Arc::strong_count(&keeper),
            1,
            "round {round}: tasks still hold the keeper"
        );
        drop(keeper);
        let stats = sim.handle.stats();
        assert_eq!(
            stats.violations.refresh_replay, 0,
            "round {round}: {:?}",
            stats.recent_violations
        );
        assert_eq!(
            stats.violations.invalid_grant, 0,
            "round {round}: {:?}",
            stats.recent_violations
        );
        assert!(
            stats.tokens.refresh_token > refreshes_before,
            "round {round} refreshed nothing"
        );
        refreshes_before = stats.tokens.refresh_token;
    }

    // Every user can still refresh with what the store holds.
    let store = Store::open(&path).unwrap();
    for id in &ids {
        assert_eq!(store.user(id).unwrap().unwrap().status, UserStatus::Active);
        let t = store.tokens(id).unwrap().unwrap();
        let fresh = client
            .auth()
            .refresh(t.refresh_token.as_ref().unwrap())
            .await
            .unwrap_or_else(|e| panic!("{id} lost: {e}"));
        store.rotate_tokens(id, &fresh).unwrap();
    }
    let stats = sim.handle.stats();
    assert_eq!(stats.tokens.grants_revoked, 0);
    assert_eq!(stats.violations.refresh_replay, 0);
    eprintln!(
        "{} refreshes over {ROUNDS} rounds",
        stats.tokens.refresh_token
    );
}
