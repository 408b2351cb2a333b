//! The admin socket against a running daemon and enode-sim: status and
//! a charge-now through the socket's client, and the CLI's exit 69 when no
//! daemon answers. Peer refusal is tested on the decision function with
//! crafted credentials (`admin::peer` unit tests): these tests run as
//! root, whom the socket always admits.

mod common;

use std::time::Duration;

use common::fleet;
use smartcharged::admin::client::{Client, ClientError};

#[tokio::test(start_paused = true)]
async fn status_and_charge_now_through_the_socket() {
    let mut r = fleet::start(fleet::scenario(1, 1), "").await;
    let config = smartcharged::admin::bind(&r.daemon.admin_config()).await;
    let (listener, allowed) = config.unwrap();
    r.daemon.serve_admin(listener, allowed);
    r.clock.sleep(Duration::from_secs(5 * 3600)).await;
    let client = Client::new(&r.daemon.admin_config().socket).unwrap();
    let status: serde_json::Value = client.get("/v1/status").await.unwrap();
    assert_eq!(status["vehicles"][0]["id"], "car-0-0", "{status}");
    assert_eq!(status["vehicles"][0]["explanation"]["code"], "waiting");
    let bad = client
        .post::<_, serde_json::Value>(
            "/v1/vehicles/car-0-0/override",
            &serde_json::json!({"mode": "charge-now", "soc": 500.0}),
        )
        .await;
    assert!(
        matches!(bad, Err(ClientError::Refused { status: 400, .. })),
        "{bad:?}"
    );
    let _ = fleet::drain_commands(&mut r.events);
    let v: serde_json::Value = client
        .post(
            "/v1/vehicles/car-0-0/override",
            &serde_json::json!({"mode": "charge-now", "until": "23:00"}),
        )
        .await
        .unwrap();
    assert_eq!(v["override"]["mode"], "charge-now", "{v}");
    let sent = fleet::drain_commands(&mut r.events);
    assert!(sent.iter().any(|c| c.action == "START"), "{sent:?}");
    let journal: Vec<serde_json::Value> = client.get("/v1/journal?vehicle=car-0-0").await.unwrap();
    assert!(
        journal.iter().any(|e| e["action"] == "OVERRIDE"),
        "{journal:?}"
    );
    let missing = client.get::<serde_json::Value>("/v1/vehicles/nope").await;
    assert!(matches!(
        missing,
        Err(ClientError::Refused { status: 404, .. })
    ));
    r.daemon.shutdown(&r.clock).await.unwrap();
}

#[test]
fn without_a_daemon_the_cli_exits_69() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smartcharged"))
        .args(["status", "--socket"])
        .arg(dir.path().join("admin.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no daemon answers on"), "{err}");
}
