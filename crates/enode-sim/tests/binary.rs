//! The `enode-sim` binary prints its address first and serves there.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_prints_its_address_and_serves_a_scenario_file() {
    let dir = std::env::temp_dir().join(format!("enode-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("one.toml");
    let mut f = std::fs::File::create(&file).unwrap();
    writeln!(
        f,
        "start = \"2024-03-01T16:00:00Z\"\n[[clients]]\nclient_id = \"c\"\nclient_secret = \"s\"\n\
         redirect_uris = [\"http://127.0.0.1/cb\"]\n[[users]]\nid = \"solo\""
    )
    .unwrap();
    drop(f);

    let mut child = Command::new(env!("CARGO_BIN_EXE_enode-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--time-scale",
            "60",
            "--seed",
            "5",
        ])
        .arg("--scenario")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().expect("first line is the address");

    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{addr}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .post(format!("http://{addr}/oauth2/token"))
        .basic_auth("c", Some("s"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn binary_refuses_a_bad_scenario() {
    let out = Command::new(env!("CARGO_BIN_EXE_enode-sim"))
        .args(["--scenario", "/nonexistent/scenario.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no address printed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read scenario"), "{err}");
}
