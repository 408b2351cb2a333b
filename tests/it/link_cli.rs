//! `smartcharged link --paste`, `users` and `unlink` as a user runs them,
//! against an in-process enode-sim; and the store-in-use error.

use crate::common;

use std::process::Command;

use clock::Clock;
use enode_sim::{Scenario, UserSpec};

/// A config file for the simulator in `dir`; the secret comes from the env.
fn write_config(dir: &std::path::Path, sim: &enode_sim::Sim) -> std::path::PathBuf {
    let path = dir.join("smartcharged.toml");
    std::fs::write(
        &path,
        format!(
            "[enode]\napi_url = \"{}/\"\nauth_url = \"{}\"\ntoken_url = \"{}\"\nclient_id = \"{}\"\n\n[store]\npath = \"store\"\n",
            sim.base_url(),
            sim.auth_url(),
            sim.token_url(),
            common::CLIENT_ID
        ),
    )
    .unwrap();
    path
}

fn smartcharged(config: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smartcharged"));
    c.args(args)
        .arg("--config")
        .arg(config)
        .env("SMARTCHARGED_CLIENT_SECRET", common::CLIENT_SECRET)
        .env_remove("CREDENTIALS_DIRECTORY");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_paste_then_users_then_unlink() {
    let scenario = Scenario {
        users: vec![UserSpec::new("alice")],
        ..Scenario::default()
    };
    let sim = enode_sim::spawn(scenario, Clock::system()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);

    let p = common::link_paste(smartcharged(
        &config,
        &["link", "alice", "--paste", "--vendor", "TESLA"],
    ))
    .await;
    assert!(p.url.as_str().starts_with(&sim.auth_url()), "{}", p.url);
    assert!(p.status.success(), "{}", p.stderr);
    assert!(p.rest.contains("linked user alice"), "{}", p.rest);

    let out = tokio::task::block_in_place(|| smartcharged(&config, &["users", "--json"]).output())
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users[0]["id"], "alice");
    assert_eq!(users[0]["status"], "active");
    assert_eq!(users[0]["vendor"], "TESLA");
    assert!(users[0]["token_expires_at"].is_string());

    let out = tokio::task::block_in_place(|| smartcharged(&config, &["unlink", "alice"]).output())
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sim.handle.stats().count("DELETE /users/{userId}", 204), 1);
    let out = tokio::task::block_in_place(|| smartcharged(&config, &["users", "--json"]).output())
        .unwrap();
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_consent_exits_nonzero_with_the_reason() {
    let sim = enode_sim::spawn(Scenario::default(), Clock::system())
        .await
        .unwrap();
    sim.handle
        .set_authorize_error(Some(enode_sim::AuthorizeError::access_denied()));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let p = common::link_paste(smartcharged(&config, &["link", "bob", "--paste"])).await;
    assert_eq!(p.status.code(), Some(1), "{}", p.stderr);
    assert!(
        p.stderr.contains("authorization failed: access_denied"),
        "{}",
        p.stderr
    );
}

#[test]
fn store_in_use_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smartcharged.toml");
    std::fs::write(
        &config,
        "[enode]\nclient_id = \"c\"\n\n[store]\npath = \"store\"\n",
    )
    .unwrap();
    let _held = smartcharged::store::Store::open(&dir.path().join("store")).unwrap();
    let out = smartcharged(&config, &["users"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains(&format!("is in use by pid {}", std::process::id())),
        "{stderr}"
    );
}

/// Ids and vendors are checked before anything is sent: a user id outside
/// the grammar and a vendor outside the spec's list are usage errors, and
/// a vendor in any case is sent as the spec spells it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_and_vendors_are_refused_before_anything_is_sent() {
    let sim = enode_sim::spawn(Scenario::default(), Clock::system())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    for (args, needle) in [
        (vec!["link", "..", "--paste"], "invalid user id `..`"),
        (vec!["link", "a/b", "--paste"], "invalid user id"),
        (vec!["link", "a\nb", "--paste"], "invalid user id"),
        (vec!["unlink", "a b"], "invalid user id"),
        (
            vec!["link", "carol", "--paste", "--vendor", "FORD"],
            "unknown vendor `FORD`",
        ),
        (
            vec!["link", "carol", "--paste", "--language", "x"],
            "is not a language tag",
        ),
    ] {
        let out = tokio::task::block_in_place(|| smartcharged(&config, &args).output()).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    assert_eq!(sim.handle.stats().total_requests, 0);

    let p = common::link_paste(smartcharged(
        &config,
        &["link", "carol", "--paste", "--vendor", "tesla"],
    ))
    .await;
    assert!(p.status.success(), "{}", p.stderr);
    let stats = sim.handle.stats();
    assert_eq!(
        stats.count("POST /users/{userId}/link", 200),
        1,
        "{:?}",
        stats.requests
    );
}
