//! The token keeper under load and over time: many users with short-lived
//! tokens over simulated hours (a day with SMARTCHARGED_LONG_TESTS=1), on
//! paused tokio time.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use clock::Clock;
use enode_sim::{Scenario, UserSpec};
use smartcharged::daemon::tokens::TokenKeeper;
use smartcharged::enode::Client;
use smartcharged::store::Store;
use smartcharged::users::{User, UserId, UserStatus};
use tokio_util::sync::CancellationToken;

const USERS: usize = 1000;
const TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Simulated time of the 1,000-user run: 1 hour in CI (60 rotations per
/// user, 60,000 in all), a whole day with `SMARTCHARGED_LONG_TESTS=1`
/// (about 8 minutes in the dev profile on two busy cores).
fn span() -> Duration {
    let hours = if std::env::var_os("SMARTCHARGED_LONG_TESTS").is_some() {
        24
    } else {
        1
    };
    Duration::from_secs(hours * 3600)
}
/// How often each user's "daemon work" calls the API with its token.
const CALL_EVERY: Duration = Duration::from_secs(300);

fn scenario(users: usize) -> Scenario {
    Scenario {
        access_token_lifetime_secs: TOKEN_LIFETIME.as_secs(),
        users: (0..users)
            .map(|i| UserSpec::new(format!("user-{i:04}")))
            .collect(),
        ..Scenario::default()
    }
}

/// Links every scenario user through the simulator's handle and stores them.
fn seed(sim: &enode_sim::Sim, store: &Store, clock: &Clock, users: usize) -> Vec<UserId> {
    (0..users)
        .map(|i| {
            let id = UserId::new(format!("user-{i:04}")).unwrap();
            let tokens = common::granted(sim, id.as_str(), clock.now());
            let user = User {
                id: id.clone(),
                status: UserStatus::Active,
                linked_at: clock.now(),
                vendor: None,
            };
            store.save_linked_user(&user, &tokens).unwrap();
            id
        })
        .collect()
}

/// A keeper running over `users` linked users whose access tokens last
/// 10 minutes, and what the tests look at.
struct TenMinutes {
    clock: Clock,
    sim: enode_sim::Sim,
    client: Client,
    store: Store,
    users: Vec<UserId>,
    keeper: Arc<TokenKeeper>,
    cancel: CancellationToken,
    run: tokio::task::JoinHandle<()>,
    /// The store's directory, removed when dropped.
    _dir: tempfile::TempDir,
}

async fn ten_minute_tokens(users: usize, config: smartcharged::config::TokenConfig) -> TenMinutes {
    let clock = Clock::starting_at(common::t0());
    let sim = enode_sim::spawn(scenario(users), clock.clone())
        .await
        .unwrap();
    sim.handle
        .set_access_token_lifetime(Duration::from_secs(600));
    let client = Client::new(&common::enode_config(&sim), clock.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let users = seed(&sim, &store, &clock, users);
    let keeper = TokenKeeper::new(store.clone(), client.clone(), clock.clone(), config);
    keeper.load().unwrap();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(keeper.clone().run(cancel.clone()));
    TenMinutes {
        clock,
        sim,
        client,
        store,
        users,
        keeper,
        cancel,
        run,
        _dir: dir,
    }
}

#[tokio::test(start_paused = true)]
async fn thousand_users_sixty_second_tokens() {
    let clock = Clock::starting_at(common::t0());
    let sim = enode_sim::spawn(scenario(USERS), clock.clone())
        .await
        .unwrap();
    let client = Client::new(&common::enode_config(&sim), clock.clone()).unwrap();
    // tmpfs when there is one: the test is about ordering, not the disk.
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let path = dir.path().join("store");
    let store = Store::open(&path).unwrap();
    let users = seed(&sim, &store, &clock, USERS);

    let keeper = TokenKeeper::new(
        store.clone(),
        client.clone(),
        clock.clone(),
        common::token_config(),
    );
    assert_eq!(keeper.load().unwrap(), USERS);
    let cancel = CancellationToken::new();
    let run = tokio::spawn(keeper.clone().run(cancel.clone()));

    // Every user's API work: a call with the keeper's token every 5 minutes,
    // spread over the interval.
    let mut workers = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let keeper = Arc::clone(&keeper);
        let client = client.clone();
        let user = user.clone();
        let cancel = cancel.clone();
        let offset = CALL_EVERY.mul_f64(i as f64 / USERS as f64);
        workers.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let mut calls = 0u32;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return calls,
                    _ = tokio::time::sleep(CALL_EVERY) => {}
                }
                let token = keeper.access_token(&user).await.expect("token");
                client.me(&token).await.expect("GET /me");
                calls += 1;
            }
        }));
    }

    let span = span();
    clock.sleep(span).await;
    cancel.cancel();
    run.await.unwrap();
    let mut calls = 0;
    for w in workers {
        calls += w.await.unwrap();
    }

    let stats = sim.handle.stats();
    let v = &stats.violations;
    assert_eq!(
        v.expired_token, 0,
        "an API call carried an expired token: {:?}",
        stats.recent_violations
    );
    assert_eq!(v.invalid_grant, 0, "{:?}", stats.recent_violations);
    assert_eq!(v.refresh_replay, 0, "{:?}", stats.recent_violations);
    assert_eq!(stats.tokens.grants_revoked, 0);
    let per_user_min = span.as_secs() / TOKEN_LIFETIME.as_secs();
    assert!(
        stats.tokens.refresh_token >= USERS as u64 * per_user_min,
        "only {} refreshes",
        stats.tokens.refresh_token
    );
    let per_user_calls = (span.as_secs() / CALL_EVERY.as_secs()) as usize;
    assert!(
        calls as usize >= USERS * (per_user_calls - 2),
        "only {calls} API calls"
    );
    eprintln!(
        "{} refreshes, {} API calls, {} requests in total",
        stats.tokens.refresh_token, calls, stats.total_requests
    );

    // Reopen the store: every user's stored refresh token is the live one.
    drop(keeper);
    drop(store);
    let store = Store::open(&path).unwrap();
    for user in &users {
        let u = store.user(user).unwrap().unwrap();
        assert_eq!(u.status, UserStatus::Active, "{user}");
        let t = store.tokens(user).unwrap().unwrap();
        let fresh = client
            .auth()
            .refresh(t.refresh_token.as_ref().unwrap())
            .await
            .unwrap_or_else(|e| panic!("{user}: stored refresh token is dead: {e}"));
        store.rotate_tokens(user, &fresh).unwrap();
    }
    let after = sim.handle.stats();
    assert_eq!(after.violations.refresh_replay, 0);
    assert_eq!(after.violations.invalid_grant, 0);
}

/// Transient token-endpoint failures are retried with backoff before the
/// token expires; a revoked grant marks the user needs-relink in the store
/// and ends its loop, while the other users go on.
#[tokio::test(start_paused = true)]
async fn retries_transient_failures_and_marks_revoked_users() {
    let TenMinutes {
        clock,
        sim,
        client,
        store,
        users,
        keeper,
        cancel,
        run,
        _dir,
    } = ten_minute_tokens(3, common::token_config()).await;

    // The next 6 token requests fail with 503: the first refreshes (due
    // 75-87.5 % into the 10-minute lifetime) must retry and still succeed
    // before expiry.
    sim.handle
        .server_error_next(enode_sim::Target::Token, None, 6, 503);
    sim.handle.revoke_user(users[2].as_str()).unwrap();
    clock.sleep(Duration::from_secs(3 * 600)).await;
    for u in &users[..2] {
        let token = keeper.access_token(u).await.unwrap();
        client.me(&token).await.unwrap();
    }
    let stats = sim.handle.stats();
    assert!(
        stats.count("POST /oauth2/token", 503) >= 1,
        "{:?}",
        stats.requests
    );
    assert_eq!(stats.violations.expired_token, 0);
    assert_eq!(
        store.user(&users[2]).unwrap().unwrap().status,
        UserStatus::NeedsRelink
    );
    assert_eq!(
        store.user(&users[0]).unwrap().unwrap().status,
        UserStatus::Active
    );
    assert!(matches!(
        keeper.access_token(&users[2]).await,
        Err(smartcharged::daemon::tokens::TokenError::NeedsRelink(_))
    ));
    cancel.cancel();
    run.await.unwrap();
}

/// A keeper restarted on a store whose users are all overdue (their
/// refresh time passed while the daemon was down), `left` before their
/// one-hour tokens expire. Returns the simulator, the keeper's cancel, the
/// restart instant and the users.
async fn restart_overdue(
    users: usize,
    left: Duration,
    token_latency: Option<Duration>,
) -> (
    enode_sim::Sim,
    CancellationToken,
    chrono::DateTime<chrono::Utc>,
    tempfile::TempDir,
) {
    let clock = Clock::starting_at(common::t0());
    let sim = enode_sim::spawn(scenario(users), clock.clone())
        .await
        .unwrap();
    sim.handle
        .set_access_token_lifetime(Duration::from_secs(3600));
    let client = Client::new(&common::enode_config(&sim), clock.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    seed(&sim, &store, &clock, users);
    // The daemon was down until `left` before expiry.
    clock.sleep(Duration::from_secs(3600) - left).await;
    if let Some(l) = token_latency {
        sim.handle.add_latency(enode_sim::Target::Token, l);
    }
    let restarted = clock.now();
    let keeper = TokenKeeper::with_seed(store, client, clock.clone(), common::token_config(), 11);
    assert_eq!(keeper.load().unwrap(), users);
    let cancel = CancellationToken::new();
    tokio::spawn(keeper.run(cancel.clone()));
    // Long enough for every overdue refresh, short of the next round.
    clock.sleep(left).await;
    (sim, cancel, restarted, dir)
}

/// After a restart, the users that are overdue do not all refresh in the
/// same instant (a crash there would catch every rotation in flight): the
/// refreshes are spread over the next minute, at most half the time the
/// tokens have left, and each user refreshes once, before expiry.
#[tokio::test(start_paused = true)]
async fn overdue_refreshes_after_a_restart_are_spread() {
    let users = 200;
    let left = Duration::from_secs(100);
    let (sim, cancel, restarted, _dir) = restart_overdue(users, left, None).await;
    cancel.cancel();
    let rotations = sim.handle.rotations();
    assert_eq!(rotations.len(), users, "each overdue user refreshes once");
    let offsets: Vec<i64> = rotations
        .iter()
        .map(|r| (r.at - restarted).num_milliseconds())
        .collect();
    let (first, last) = (
        *offsets.iter().min().unwrap(),
        *offsets.iter().max().unwrap(),
    );
    // Spread over at most half of the 100 s left, and over most of it.
    assert!(first >= 0 && last <= 50_000, "{first}..{last} ms");
    assert!(
        last - first >= 40_000,
        "spread only over {first}..{last} ms"
    );
    let mut per_second = std::collections::HashMap::new();
    for o in &offsets {
        *per_second.entry(o / 1000).or_insert(0) += 1;
    }
    let crowd = *per_second.values().max().unwrap();
    assert!(crowd <= 15, "{crowd} of {users} refreshes in one second");
    let stats = sim.handle.stats();
    assert_eq!(stats.violations.total(), 0, "{:?}", stats.recent_violations);
}

/// However many users are due, at most `MAX_REFRESHES_IN_FLIGHT` refreshes
/// are in flight at once (the server counts them, slow answers included),
/// so a crash can catch only that many rotations; and the queue still
/// refreshes everyone before expiry.
#[tokio::test(start_paused = true)]
async fn refreshes_in_flight_are_bounded() {
    use smartcharged::daemon::tokens::MAX_REFRESHES_IN_FLIGHT;
    let users = 100;
    // Spread over 60 s with 3 s answers: about 5 at once on average
    // without the bound, more at peaks.
    let left = Duration::from_secs(300);
    let (sim, cancel, restarted, _dir) =
        restart_overdue(users, left, Some(Duration::from_secs(3))).await;
    cancel.cancel();
    let stats = sim.handle.stats();
    assert!(
        stats.tokens.max_in_flight <= MAX_REFRESHES_IN_FLIGHT as u64,
        "{} token requests in flight at once",
        stats.tokens.max_in_flight
    );
    assert!(
        stats.tokens.max_in_flight >= 2,
        "the bound was never reached: {}",
        stats.tokens.max_in_flight
    );
    let rotations = sim.handle.rotations();
    assert_eq!(rotations.len(), users, "each overdue user refreshes once");
    let expiry = restarted + chrono::TimeDelta::from_std(left).unwrap();
    let last = rotations.iter().map(|r| r.at).max().unwrap();
    assert!(
        last + chrono::TimeDelta::seconds(60) < expiry,
        "the last refresh ({last}) came close to expiry ({expiry})"
    );
    assert_eq!(stats.violations.total(), 0, "{:?}", stats.recent_violations);
}

/// One task keeps every user's schedule: a user whose grant was revoked
/// drops out of it, and comes back when it is linked again (a new slot),
/// while the other user's refreshes go on. Checked on the stored tokens,
/// which only scheduled refreshes keep valid (a token handed out on demand
/// would hide a user missing from the schedule).
#[tokio::test(start_paused = true)]
async fn a_user_linked_again_after_revocation_is_kept_fresh_again() {
    let TenMinutes {
        clock,
        sim,
        client: _,
        store,
        users,
        keeper,
        cancel,
        run,
        _dir,
    } = ten_minute_tokens(2, common::token_config()).await;

    sim.handle.revoke_user(users[1].as_str()).unwrap();
    clock.sleep(Duration::from_secs(700)).await;
    assert_eq!(
        store.user(&users[1]).unwrap().unwrap().status,
        UserStatus::NeedsRelink
    );
    let stored = |u: &UserId| store.tokens(u).unwrap().unwrap().expires_at;
    assert!(stored(&users[0]) > clock.now(), "user 0 not refreshed");

    // Linked again: a new grant, handed to the running keeper.
    let tokens = common::granted(&sim, users[1].as_str(), clock.now());
    let first_expiry = tokens.expires_at;
    store
        .save_linked_user(
            &User {
                id: users[1].clone(),
                status: UserStatus::Active,
                linked_at: clock.now(),
                vendor: None,
            },
            &tokens,
        )
        .unwrap();
    keeper.add_user(users[1].clone(), tokens).await.unwrap();
    // Three lifetimes later both users' stored tokens are still valid,
    // and the relinked user's were rotated at least twice.
    clock.sleep(Duration::from_secs(3 * 600)).await;
    for u in &users {
        assert!(stored(u) > clock.now(), "{u}: stored tokens expired");
    }
    assert!(
        stored(&users[1]) > first_expiry + chrono::TimeDelta::seconds(2 * 400),
        "the relinked user was not refreshed on schedule"
    );
    assert_eq!(sim.handle.stats().violations.expired_token, 0);
    cancel.cancel();
    run.await.unwrap();
}

/// A user linked again while the old grant's scheduled refresh is in
/// flight and then refused (the old grant is gone): the refusal must not
/// mark the new link needs-relink. The refusal is marked while the
/// refresh mutex is held, so the new link, which waits for that mutex,
/// finds the old slot dead and starts afresh.
#[tokio::test(start_paused = true)]
async fn a_refusal_of_the_old_grant_does_not_undo_a_new_link() {
    // No jitter: each refresh is due exactly 75 s (an eighth of the
    // lifetime) before expiry.
    let config = smartcharged::config::TokenConfig {
        refresh_jitter: Duration::ZERO,
        ..common::token_config()
    };
    let TenMinutes {
        clock,
        sim,
        client,
        store,
        users,
        keeper,
        cancel,
        run,
        _dir,
    } = ten_minute_tokens(1, config).await;
    let user = users[0].clone();

    // The first refresh (at 300 s: loaded tokens are assumed to last long
    // enough for the 5-minute lead) learns the 600 s lifetime; the next
    // one is due 75 s before the new tokens expire.
    clock.sleep(Duration::from_secs(310)).await;
    let expires = store.tokens(&user).unwrap().unwrap().expires_at;
    let due = expires - chrono::TimeDelta::seconds(75);
    // The old grant is gone before that refresh, whose refusal then
    // takes 50 s to arrive.
    let until = |t: chrono::DateTime<chrono::Utc>| (t - clock.now()).to_std().unwrap();
    clock
        .sleep(until(due - chrono::TimeDelta::seconds(25)))
        .await;
    sim.handle.revoke_user(user.as_str()).unwrap();
    sim.handle
        .add_latency(enode_sim::Target::Token, Duration::from_secs(50));
    clock
        .sleep(until(due + chrono::TimeDelta::seconds(15)))
        .await;
    // Linked again while that refresh is in flight.
    let tokens = common::granted(&sim, user.as_str(), clock.now());
    let linked = User {
        id: user.clone(),
        status: UserStatus::Active,
        linked_at: clock.now(),
        vendor: None,
    };
    store.save_linked_user(&linked, &tokens).unwrap();
    keeper.add_user(user.clone(), tokens).await.unwrap();
    assert!(
        clock.now() >= due + chrono::TimeDelta::seconds(50),
        "the new link did not wait for the refresh in flight"
    );

    clock.sleep(Duration::from_secs(1800)).await;
    assert_eq!(
        store.user(&user).unwrap().unwrap().status,
        UserStatus::Active
    );
    assert!(store.tokens(&user).unwrap().unwrap().expires_at > clock.now());
    let token = keeper.access_token(&user).await.expect("a token");
    client
        .me(&token)
        .await
        .expect("GET /me with the new link's token");
    cancel.cancel();
    run.await.unwrap();
}
