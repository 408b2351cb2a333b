//! The whole link flow against enode-sim: success, wrong state, denied
//! consent, and a PKCE verifier the server checks.

use crate::common;

use clock::Clock;
use enode_sim::{AuthorizeError, Scenario, UserSpec};
use smartcharged::enode::Client;
use smartcharged::link::{self, LinkError, Request};
use smartcharged::secret::Secret;
use smartcharged::store::Store;
use smartcharged::users::{UserId, UserStatus};

struct Env {
    sim: enode_sim::Sim,
    client: Client,
    store: Store,
    clock: Clock,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let clock = Clock::starting_at(common::t0());
    let scenario = Scenario {
        users: vec![UserSpec::new("alice")],
        ..Scenario::default()
    };
    let sim = enode_sim::spawn(scenario, clock.clone()).await.unwrap();
    let client = Client::new(&common::enode_config(&sim), clock.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    Env {
        sim,
        client,
        store,
        clock,
        _dir: dir,
    }
}

impl Env {
    /// Completes the flow `started` from `callback`.
    async fn complete(
        &self,
        started: &link::Started,
        callback: &url::Url,
    ) -> Result<(smartcharged::users::User, smartcharged::model::TokenSet), LinkError> {
        link::complete(
            &self.client,
            &self.store,
            &self.clock,
            &started.link_state,
            callback,
        )
        .await
    }
}

async fn start(e: &Env) -> link::Started {
    link::start(
        &e.client,
        &e.store,
        &e.clock,
        Request {
            user: &UserId::new("alice").unwrap(),
            vendor: Some("TESLA"),
            language: None,
            pkce: true,
            timeout: std::time::Duration::from_secs(1800),
        },
    )
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn link_succeeds_and_tokens_work() {
    let e = env().await;
    let started = start(&e).await;
    let q: Vec<(String, String)> = started.authorize_url.query_pairs().into_owned().collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("state").as_deref(), Some(started.link_state.as_str()));
    assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(get("scope").as_deref(), Some("offline_access all"));

    let callback = common::consent(&started.authorize_url).await;
    let (user, tokens) = e.complete(&started, &callback).await.unwrap();
    assert_eq!(user.id, UserId::new("alice").unwrap());
    assert_eq!(user.status, UserStatus::Active);
    assert_eq!(user.vendor.as_deref(), Some("TESLA"));
    assert!(tokens.refresh_token.is_some());

    // Stored, and usable.
    let stored = e.store.tokens(&user.id).unwrap().unwrap();
    assert_eq!(stored, tokens);
    let me = e.client.me(&tokens.access_token).await.unwrap();
    assert_eq!(me.id, "alice");
    // And journaled.
    let journal = e.store.journal_entries().unwrap();
    assert!(
        journal.iter().any(|j| j.user == "alice"
            && j.action == "LINK"
            && j.reason.contains("link completed")),
        "{journal:?}"
    );
    // The state was single-use.
    let again = e.complete(&started, &callback).await;
    assert!(matches!(again, Err(LinkError::UnknownState)), "{again:?}");
    assert_eq!(e.sim.handle.stats().tokens.authorization_code, 1);
}

#[tokio::test(start_paused = true)]
async fn wrong_state_is_rejected_and_nothing_stored() {
    let e = env().await;
    let started = start(&e).await;
    let mut callback = common::consent(&started.authorize_url).await;
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    callback
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "forged-state");
    let r = e.complete(&started, &callback).await;
    assert!(matches!(r, Err(LinkError::StateMismatch)), "{r:?}");
    assert!(e.store.users().unwrap().is_empty());
    assert_eq!(
        e.sim.handle.stats().tokens.authorization_code,
        0,
        "no code exchange"
    );
}

#[tokio::test(start_paused = true)]
async fn access_denied_is_reported() {
    let e = env().await;
    e.sim
        .handle
        .set_authorize_error(Some(AuthorizeError::access_denied()));
    let started = start(&e).await;
    let callback = common::consent(&started.authorize_url).await;
    let r = e.complete(&started, &callback).await;
    match r {
        Err(LinkError::Denied { error, .. }) => assert_eq!(error, "access_denied"),
        other => panic!("expected Denied, got {other:?}"),
    }
    assert!(e.store.users().unwrap().is_empty());
    assert!(
        e.store
            .take_link_session(&started.link_state)
            .unwrap()
            .is_none(),
        "session spent"
    );
}

#[tokio::test(start_paused = true)]
async fn pkce_verifier_is_checked_by_the_server() {
    let e = env().await;
    let started = start(&e).await;
    let callback = common::consent(&started.authorize_url).await;
    // Swap the stored verifier for another one: the server must refuse it.
    let mut session = e
        .store
        .take_link_session(&started.link_state)
        .unwrap()
        .unwrap();
    assert!(session.pkce_verifier.is_some());
    session.pkce_verifier = Some(Secret::new("x".repeat(64)));
    e.store
        .put_link_session(&started.link_state, &session)
        .unwrap();
    let r = e.complete(&started, &callback).await;
    assert!(matches!(r, Err(LinkError::Exchange(_))), "{r:?}");
    assert!(e.store.users().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn expired_session_is_refused() {
    let e = env().await;
    let started = start(&e).await;
    let callback = common::consent(&started.authorize_url).await;
    tokio::time::advance(std::time::Duration::from_secs(1801)).await;
    let r = e.complete(&started, &callback).await;
    assert!(matches!(r, Err(LinkError::Expired)), "{r:?}");
}

/// An unlink that runs while the code of a link flow is being exchanged
/// (Enode's token endpoint is slow) wins: the flow ends with an error and
/// the user does not come back after its UNLINK.
#[tokio::test(start_paused = true)]
async fn an_unlink_during_the_code_exchange_keeps_the_user_unlinked() {
    let e = env().await;
    let alice = UserId::new("alice").unwrap();
    let first = start(&e).await;
    let callback = common::consent(&first.authorize_url).await;
    e.complete(&first, &callback).await.unwrap();
    // alice links again (another vendor, say) while she is unlinked.
    let again = start(&e).await;
    let callback = common::consent(&again.authorize_url).await;
    let slow = e.sim.handle.add_fault(enode_sim::Fault {
        kind: enode_sim::FaultKind::Latency { millis: 10_000 },
        user: None,
        target: enode_sim::Target::Token,
        trigger: enode_sim::Trigger::Always,
    });
    let unlinking = async {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        smartcharged::unlink::begin(&e.store, &alice, false).unwrap();
        let known = smartcharged::unlink::at_enode(&e.client, &alice)
            .await
            .unwrap();
        smartcharged::unlink::finish(&e.store, &alice, e.clock.now(), "a test", known).unwrap();
    };
    let (r, ()) = tokio::join!(e.complete(&again, &callback), unlinking);
    e.sim.handle.remove_fault(slow);
    assert!(matches!(r, Err(LinkError::UnknownState)), "{r:?}");
    assert!(e.store.user(&alice).unwrap().is_none());
    assert!(e.store.tokens(&alice).unwrap().is_none());
}
