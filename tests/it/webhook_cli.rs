//! `smartcharged webhook register`, `test` and `status` as an operator
//! runs them, against enode-sim and a running daemon on 127.0.0.1.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::fleet;
use clock::Clock;

fn smartcharged(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smartcharged"));
    c.args(args)
        .arg("--config")
        .arg(config)
        .env("SMARTCHARGED_CLIENT_SECRET", common::CLIENT_SECRET)
        .env_remove("CREDENTIALS_DIRECTORY");
    tokio::task::block_in_place(|| c.output()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_test_then_status() {
    let sim = enode_sim::spawn(fleet::scenario(1, 1), Clock::system())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let text = format!(
        "{}\n[http]\nlisten = \"{addr}\"\n\n[webhooks]\n",
        fleet::config_text(&sim, &store, "")
    );
    let config = dir.path().join("smartcharged.toml");
    std::fs::write(&config, &text).unwrap();
    let daemon = smartcharged::daemon::run::Daemon::start(
        fleet::config(&text, dir.path()),
        smartcharged::daemon::run::Options {
            clock: Clock::system(),
            cron: false,
            events: None,
            seed: 1,
        },
    )
    .await
    .unwrap();
    daemon.serve_http(listener);
    // `webhook status` (and `test`, which watches the counters) read over
    // the admin socket.
    let (socket, allowed) = smartcharged::admin::bind(&daemon.admin_config())
        .await
        .unwrap();
    daemon.serve_admin(socket, allowed);

    // Not https and not loopback: refused before anything is stored.
    let out = smartcharged(
        &config,
        &["webhook", "register", "--url", "http://example.com/hook"],
    );
    assert_eq!(out.status.code(), Some(65));
    assert!(!store.join("webhook-secret").exists());

    let url = format!("http://{addr}/webhooks/enode");
    let out = smartcharged(&config, &["webhook", "register", "--url", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret_file = store.join("webhook-secret");
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    assert_eq!(secret.trim().len(), 64, "256 bits as hex");
    assert!(secret.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(secret.trim()),
        "the secret was printed"
    );
    assert_eq!(sim.handle.stats().count("PUT /webhooks/firehose", 204), 1);

    let out = smartcharged(&config, &["webhook", "test"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("test event arrived"), "{stdout}");

    let out = smartcharged(&config, &["webhook", "status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["stats"]["tests"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["stats"]["bad_signature"], 0, "{s}");
    assert_eq!(s["live"], true, "{s}");
    let out = smartcharged(&config, &["webhook", "status"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("webhooks: live at /webhooks/enode"),
        "{stdout}"
    );

    daemon.shutdown().await.unwrap();
    // No daemon: status says so and exits 69.
    let out = smartcharged(&config, &["webhook", "status"]);
    assert_eq!(out.status.code(), Some(69));
}
