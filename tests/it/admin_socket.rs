//! The admin socket against a running daemon and enode-sim: status and
//! a charge-now through the socket's client, and the CLI's exit 69 when no
//! daemon answers. Peer refusal is tested on the decision function with
//! crafted credentials (`admin::peer` unit tests): these tests run as
//! root, whom the socket always admits.

use crate::common;

use std::time::Duration;

use crate::common::fleet;
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
    let mut text = Vec::new();
    smartcharged::cmd::admin::print_status(&status, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("Vehicles: 1 (1 waiting)"), "{text}");
    assert!(
        text.contains("car-0-0") && text.contains("cheaper electricity comes at"),
        "{text}"
    );
    let plan: smartcharged::admin::routes::PlanAnswer =
        client.get("/v1/vehicles/car-0-0/plan").await.unwrap();
    let chart = smartcharged::cmd::admin::plan_text("car-0-0", &plan);
    assert!(chart.contains("(Europe/Berlin)"), "{chart}");
    assert!(chart.contains("◀") && chart.contains("charge "), "{chart}");
    assert!(chart.contains("cheaper electricity comes at"), "{chart}");
    eprintln!("{text}\n{chart}");
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

/// A simulated day: each plug-in session is stored at the unplug, and the
/// report over the socket and from the store (no daemon) says what each
/// car charged, what it cost, what charging at once would have cost, and
/// that the deadlines were met; the journal lists the commands.
#[tokio::test(start_paused = true)]
async fn a_day_of_sessions_in_the_report_and_the_journal() {
    let r = fleet::start(fleet::scenario(1, 2), "").await;
    let (listener, allowed) = smartcharged::admin::bind(&r.daemon.admin_config())
        .await
        .unwrap();
    r.daemon.serve_admin(listener, allowed);
    r.clock.sleep(fleet::DAY).await;
    let client = Client::new(&r.daemon.admin_config().socket).unwrap();
    let report: smartcharged::report::Report =
        client.get("/v1/report?month=2024-03").await.unwrap();
    assert_eq!(report.vehicles.len(), 2, "{report:?}");
    for row in &report.vehicles {
        assert_eq!(row.sessions, 1, "{row:?}");
        assert_eq!(row.deadlines_met, 1, "{row:?}");
        assert!(row.energy_kwh > 1.0, "{row:?}");
        assert!(row.cost > 0.0 && row.saving >= -1e-9, "{row:?}");
    }
    assert_eq!(report.total.sessions, 2);
    eprintln!("{}", report.table());
    let journal: Vec<serde_json::Value> = client
        .get("/v1/journal?vehicle=car-0-1&since=2024-03-04")
        .await
        .unwrap();
    assert!(
        journal.iter().any(|e| e["action"] == "START"),
        "{journal:?}"
    );
    assert!(journal.iter().all(|e| e["vehicle"] == "car-0-1"));
    let bad = client
        .get::<serde_json::Value>("/v1/report?month=2024-13")
        .await;
    assert!(
        matches!(bad, Err(ClientError::Refused { status: 400, .. })),
        "{bad:?}"
    );
    let fleet::Running {
        daemon,
        clock,
        config_text,
        dir,
        ..
    } = r;
    daemon.shutdown(&clock).await.unwrap();
    drop(client);
    // No daemon: the CLI reads the store itself.
    let config = dir.path().join("smartcharged.toml");
    std::fs::write(&config, &config_text).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_smartcharged"))
            .args(["report", "--month", "2024-03", "--csv", "--config"])
            .arg(&config)
            .env("SMARTCHARGED_CLIENT_SECRET", common::CLIENT_SECRET)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines[3].starts_with("2024-03,total,") && lines[3].ends_with(",2,2"),
        "{csv}"
    );
}
