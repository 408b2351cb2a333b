//! `smartcharged run` as systemd runs it: started from a config file, it
//! logs JSON lines on stdout; `smartcharged link` goes through it while it
//! holds the store; SIGHUP with a broken config keeps the old one running;
//! SIGHUP with a good one reloads; SIGTERM drains and exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clock::Clock;

/// Waits (bounded, as a safety net) for a log line containing `needle`.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l.contains(needle) => return l,
            Ok(_) => {}
            Err(e) => panic!("no log line with {needle:?}: {e}"),
        }
    }
}

fn kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_config_keeps_the_old_one() {
    let mut scenario = smartcharged::demo::scenario(1, 1);
    scenario.users.push(enode_sim::UserSpec::new("late"));
    let sim = enode_sim::spawn(scenario, Clock::system()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    common::fleet::link_all(&sim, &store, Clock::system().now());
    // A free port for the daemon's listener, known to the link command.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let prices = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/prices/DE-LU-2023-2025.csv");
    let good = smartcharged::demo::config_text(&sim.base_url(), &store, &prices, "")
        + &format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n");
    let path = dir.path().join("smartcharged.toml");
    std::fs::write(&path, &good).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_smartcharged"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .env("SMARTCHARGED_CLIENT_SECRET", common::CLIENT_SECRET)
        .env("SMARTCHARGED_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            if tx.send(l.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let started = tokio::task::block_in_place(|| wait_for(&lines, "daemon started"));
    assert!(
        started.starts_with('{'),
        "JSON lines off a terminal: {started}"
    );

    link_through_the_daemon(&path).await;
    let linked = tokio::task::block_in_place(|| wait_for(&lines, "user linked"));
    assert!(linked.contains("late"), "{linked}");
    let status: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(status["vehicles"].is_array(), "{status}");
    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok\n");

    std::fs::write(&path, "[enode]\nclient_id = \"x\"\nthis is not toml\n").unwrap();
    kill(pid, "-HUP");
    let failed = tokio::task::block_in_place(|| wait_for(&lines, "config reload failed"));
    assert!(
        failed.contains("smartcharged.toml:3:"),
        "the error is located: {failed}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the daemon died on a bad reload"
    );

    std::fs::write(
        &path,
        good.replace("target_percent = 80", "target_percent = 85"),
    )
    .unwrap();
    kill(pid, "-HUP");
    tokio::task::block_in_place(|| wait_for(&lines, "config reloaded"));

    kill(pid, "-TERM");
    tokio::task::block_in_place(|| wait_for(&lines, "daemon stopped"));
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert_eq!(status.code(), Some(0));
}

/// `smartcharged link --paste` while the daemon holds the store: the
/// command asks the daemon to start the flow and forwards the redirect.
async fn link_through_the_daemon(config: &std::path::Path) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smartcharged"));
    cmd.args(["link", "late", "--paste", "--config"])
        .arg(config)
        .env("SMARTCHARGED_CLIENT_SECRET", common::CLIENT_SECRET);
    let p = common::link_paste(cmd).await;
    assert!(p.status.success(), "{}", p.stderr);
    assert!(p.rest.contains("linked user late"), "{}", p.rest);
}
