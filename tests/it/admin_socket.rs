//! The admin socket against a running daemon and enode-sim: status and
//! a charge-now through the socket's client, users and unlink through the
//! CLI, the CLI's exit 69 when no daemon answers, and a caller outside the
//! allowed users refused with 403 (as root: the CLI run as uid 65534;
//! otherwise: the test's own uid against a daemon that admits another).

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
        text.contains("   Fetched: 1") && text.contains(" from file:"),
        "{text}"
    );
    assert!(
        text.contains("     Saved: 0.00 EUR in 2024-03 (0.0 kWh, 0 sessions"),
        "{text}"
    );
    assert!(text.contains("     Times: Europe/Berlin"), "{text}");
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
    r.daemon.shutdown().await.unwrap();
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
        clock: _,
        config_text,
        dir,
        ..
    } = r;
    daemon.shutdown().await.unwrap();
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

/// The CLI as a user runs it against the test's config.
fn cli(config: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_smartcharged"));
    c.args(args)
        .arg("--config")
        .arg(config)
        .env("SMARTCHARGED_CLIENT_SECRET", common::CLIENT_SECRET)
        .env_remove("CREDENTIALS_DIRECTORY");
    c
}

/// Runs a command on the blocking pool (the paused clock waits for it;
/// the daemon answers meanwhile).
async fn run(mut c: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// `users` and `unlink` with a daemon running go through its socket: the
/// unlink deletes the user at Enode, stops its loop, deletes its tokens
/// and forgets its vehicles; the other user goes on.
#[tokio::test(start_paused = true)]
async fn users_and_unlink_through_the_running_daemon() {
    let r = fleet::start(fleet::scenario(2, 2), "").await;
    let (listener, allowed) = smartcharged::admin::bind(&r.daemon.admin_config())
        .await
        .unwrap();
    r.daemon.serve_admin(listener, allowed);
    r.clock.sleep(Duration::from_secs(5 * 3600)).await;
    let config = r.dir.path().join("smartcharged.toml");
    std::fs::write(&config, &r.config_text).unwrap();

    let out = run(cli(&config, &["users", "--json"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let users: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["user-0", "user-1"]);
    assert!(users.iter().all(|u| u["status"] == "active"));

    let out = run(cli(&config, &["unlink", "user-0"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("stopped controlling car-0-0") && stdout.contains("unlinked user user-0"),
        "{stdout}"
    );
    assert_eq!(r.sim.handle.stats().count("DELETE /users/{userId}", 204), 1);
    let user0 = smartcharged::users::UserId::new("user-0").unwrap();
    assert!(r.daemon.store().tokens(&user0).unwrap().is_none());
    assert!(r.daemon.store().user(&user0).unwrap().is_none());
    let fleet = r.daemon.read_model().fleet().clone();
    assert!(!fleet.running.lock().unwrap().contains(&user0));
    let snap = r.daemon.read_model().snapshot();
    assert!(snap.vehicle("car-0-0").is_none(), "{:?}", snap.vehicles);
    assert!(snap.vehicle("car-1-0").is_some());
    assert_eq!(snap.users.len(), 1);

    // An hour on: nothing is asked for the unlinked user, the other is polled.
    let before = r.sim.handle.stats();
    r.clock.sleep(Duration::from_secs(3600)).await;
    let after = r.sim.handle.stats();
    assert!(
        after.total_requests > before.total_requests,
        "the other user is still polled"
    );
    let out = run(cli(&config, &["users"])).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("user-1") && !table.contains("user-0"),
        "{table}"
    );
    let out = run(cli(&config, &["journal", "--user", "user-0", "--json"])).await;
    let journal: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        journal.iter().any(|e| e["action"] == "UNLINK"),
        "{journal:?}"
    );

    // A user id outside the grammar never reaches the daemon.
    let client = Client::new(&r.daemon.admin_config().socket).unwrap();
    let bad = client
        .post::<_, serde_json::Value>("/v1/unlink/a%20b", &serde_json::json!({}))
        .await;
    assert!(
        matches!(bad, Err(ClientError::Refused { status: 400, .. })),
        "{bad:?}"
    );
    r.daemon.shutdown().await.unwrap();
}

/// The uid the test runs as (the owner of a file it makes).
fn own_uid(dir: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    let f = dir.join("whoami");
    std::fs::write(&f, b"").unwrap();
    std::fs::metadata(&f).unwrap().uid()
}

/// A caller who is neither root, the daemon's user nor in its group gets
/// 403, the CLI exits 77, and the daemon logs the refusal once. As root
/// (CI), the CLI runs as nobody (uid/gid 65534) against a socket anyone
/// may connect to, so only the peer check stands in its way. Not as root,
/// the daemon is told its own user is another one, so the test's uid is a
/// stranger to it.
#[tokio::test(start_paused = true)]
async fn a_stranger_is_refused_with_403() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let (logs, _guard) = common::Capture::this_thread();
    let r = fleet::start(fleet::scenario(1, 1), "").await;
    let admin = r.daemon.admin_config();
    let (listener, allowed) = smartcharged::admin::bind(&admin).await.unwrap();
    let me = own_uid(r.dir.path());
    let root = me == 0;
    let allowed = if root {
        // Anyone can reach the socket: the directory and the socket
        // itself are opened up, and so is a copy of the binary.
        std::fs::set_permissions(r.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&admin.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        allowed
    } else {
        smartcharged::admin::peer::Allowed {
            own_uid: me.wrapping_add(1),
            gid: None,
        }
    };
    r.daemon.serve_admin(listener, allowed);
    r.clock.sleep(Duration::from_secs(60)).await;

    let mut c = if root {
        // The test binary's directory may be closed to nobody: a copy
        // in the open temp dir.
        let bin = r.dir.path().join("smartcharged");
        std::fs::copy(env!("CARGO_BIN_EXE_smartcharged"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = std::process::Command::new(bin);
        c.uid(65534).gid(65534);
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_smartcharged"))
    };
    c.args(["status", "--socket"])
        .arg(&admin.socket)
        .env_remove("CREDENTIALS_DIRECTORY");
    let out = run(c).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{stderr}");
    assert!(stderr.contains("not allowed"), "{stderr}");
    let stranger = if root { 65534 } else { me };
    let refused: Vec<String> = logs
        .text()
        .lines()
        .filter(|l| l.contains("admin socket: peer refused"))
        .map(str::to_owned)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains(&format!("peer.uid=Some({stranger})")),
        "{refused:?}"
    );
    if root {
        // The socket itself still admits root.
        let client = Client::new(&admin.socket).unwrap();
        let status: serde_json::Value = client.get("/v1/status").await.unwrap();
        assert!(status["version"].is_string(), "{status}");
    }
    r.daemon.shutdown().await.unwrap();
}

/// A percentage that is not a finite number is refused by the CLI: JSON
/// has no NaN or infinity, so it would reach the daemon as `null`, "no
/// value" (a charge-now without its limit, a trip without its target).
#[test]
fn a_percentage_that_is_not_a_number_is_refused_before_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["trip", "car-0-0", "--depart", "10:00", "--target", "NaN"][..],
        &["trip", "car-0-0", "--depart", "10:00", "--target", "inf"][..],
        &["override", "car-0-0", "charge-now", "--soc", "NaN"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_smartcharged"))
            .args(args)
            .arg("--socket")
            .arg(dir.path().join("admin.sock"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("not a finite number"), "{args:?}: {err}");
    }
}

/// A vehicle id goes to the socket as one encoded path segment: an id
/// such as `../../v1/unlink/USER?` must not reach another route (it once
/// unlinked the user), and `..` itself is refused before the socket.
#[test]
fn a_vehicle_id_cannot_leave_its_path_segment() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || {
        let mut paths = Vec::new();
        for _ in 0..2 {
            let (stream, _) = listener.accept().unwrap();
            let mut r = BufReader::new(stream);
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            paths.push(line.split(' ').nth(1).unwrap_or_default().to_owned());
            let mut s = r.into_inner();
            s.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\
                  content-length: 25\r\nconnection: close\r\n\r\n{\"error\":\"no such path\"}\n",
            )
            .unwrap();
        }
        paths
    });
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_smartcharged"))
            .args(args)
            .arg("--socket")
            .arg(&sock)
            .output()
            .unwrap()
    };
    cli(&["replan", "../../v1/unlink/user-0?"]);
    cli(&["override", "a/b#c", "auto"]);
    let out = cli(&["replan", ".."]);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    let paths = server.join().unwrap();
    assert_eq!(
        paths,
        [
            "/v1/vehicles/..%2F..%2Fv1%2Funlink%2Fuser-0%3F/replan",
            "/v1/vehicles/a%2Fb%23c/override",
        ]
    );
}

/// Opens `cap` connections that each send half a request head and stop
/// (slowloris), then two that send a whole `GET /health`. The two wait
/// while the half-sent ones hold every slot, and are answered once the
/// header timeout (2 s) has closed those; "connection limit reached" is
/// logged once for the episode, not per waiting connection.
async fn slowloris<S, F, Fut>(cap: usize, connect: F, logs: &common::Capture, name: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limit_lines = |text: &str| {
        text.lines()
            .filter(|l| {
                l.contains("connection limit reached")
                    && l.contains(&format!("listener=\"{name}\""))
            })
            .count()
    };
    let before = limit_lines(&logs.text());
    let t0 = tokio::time::Instant::now();
    let mut slow = Vec::new();
    for _ in 0..cap {
        let mut s = connect().await;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut s = connect().await;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        waiting.push(s);
    }
    for mut s in waiting {
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(600), s.read_to_end(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{name}: a waiting client was never answered"))
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 "), "{name}: {answer}");
        assert!(
            t0.elapsed() >= Duration::from_secs(2),
            "{name}: answered after {:?}, while every slot was held",
            t0.elapsed()
        );
    }
    for mut s in slow {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(600), s.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| panic!("{name}: a half-sent request was never closed"))
            .ok();
    }
    // The episode ends once a slot has stayed free for a header timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = logs.text();
    assert_eq!(limit_lines(&text) - before, 1, "{name}: {text}");
    assert!(text.contains("below the connection limit again"), "{text}");
}

/// Neither listener can be held by clients that never finish a request
/// head: both serve a bounded number of connections at once and close a
/// half-sent one after `header_timeout` (one accept loop serves both).
#[tokio::test(start_paused = true)]
async fn half_sent_requests_neither_pile_up_nor_hold_the_listeners() {
    let (logs, _guard) = common::Capture::this_thread();
    let r = fleet::start(fleet::scenario(1, 1), "").await;
    r.daemon.shutdown().await.unwrap();
    let text = format!(
        "{}\n[http]\nmax_connections = 4\nheader_timeout = \"2s\"\n",
        r.config_text.replace(
            "[admin]\n",
            "[admin]\nmax_connections = 3\nheader_timeout = \"2s\"\n"
        )
    );
    let (daemon, _events) = fleet::restart(&text, r.dir.path(), &r.clock).await;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    daemon.serve_http(tcp);
    let admin = daemon.admin_config();
    let (listener, allowed) = smartcharged::admin::bind(&admin).await.unwrap();
    daemon.serve_admin(listener, allowed);

    let tcp_connect = || async { tokio::net::TcpStream::connect(addr).await.unwrap() };
    slowloris(4, tcp_connect, &logs, "http").await;
    let socket = admin.socket.clone();
    let unix_connect = || {
        let socket = socket.clone();
        async move { tokio::net::UnixStream::connect(socket).await.unwrap() }
    };
    slowloris(3, unix_connect, &logs, "admin").await;

    // Both still answer.
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let client = Client::new(&admin.socket).unwrap();
    let status: serde_json::Value = client.get("/v1/status").await.unwrap();
    assert!(status["version"].is_string(), "{status}");
    daemon.shutdown().await.unwrap();
}

/// A slowloris that keeps the listener full (each slot a header timeout
/// frees is taken at once by the next half-sent request waiting in the
/// backlog) is one episode: "connection limit reached" and "below the
/// connection limit again" are logged once each, not once per connection.
#[tokio::test(start_paused = true)]
async fn a_listener_kept_full_logs_the_limit_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (logs, _guard) = common::Capture::this_thread();
    let r = fleet::start(fleet::scenario(1, 1), "").await;
    r.daemon.shutdown().await.unwrap();
    let text = format!(
        "{}\n[http]\nmax_connections = 2\nheader_timeout = \"2s\"\n",
        r.config_text
    );
    let (daemon, _events) = fleet::restart(&text, r.dir.path(), &r.clock).await;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    daemon.serve_http(tcp);
    let mut slow = Vec::new();
    for _ in 0..10 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    for mut s in slow {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(600), s.read_to_end(&mut rest))
            .await
            .expect("a half-sent request was never closed")
            .ok();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let text = logs.text();
    let count = |what: &str| {
        text.lines()
            .filter(|l| l.contains(what) && l.contains("listener=\"http\""))
            .count()
    };
    assert_eq!(count("connection limit reached"), 1, "{text}");
    assert_eq!(count("below the connection limit again"), 1, "{text}");
    daemon.shutdown().await.unwrap();
}

/// The journal's UNLINK lines of `user`, from the store.
fn unlinks(
    store: &smartcharged::store::Store,
    user: &str,
) -> Vec<smartcharged::store::JournalEntry> {
    store
        .journal_entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.user == user && e.action == "UNLINK")
        .collect()
}

/// While Enode takes its time with the DELETE, the user is marked
/// `unlinking` (`users` says so), its pending link flow is gone, and a
/// second unlink or a new link of the same user get 409: one DELETE at
/// Enode and one UNLINK line in the journal. A user the store does not
/// know gets 404 unless `force`.
#[tokio::test(start_paused = true)]
async fn one_unlink_at_a_time_and_it_cancels_the_pending_link() {
    let r = fleet::start(fleet::scenario(2, 2), "").await;
    let socket = r.daemon.admin_config().socket;
    let (listener, allowed) = smartcharged::admin::bind(&r.daemon.admin_config())
        .await
        .unwrap();
    r.daemon.serve_admin(listener, allowed);
    r.clock.sleep(Duration::from_secs(3600)).await;
    let client = Client::new(&socket).unwrap();
    let started: serde_json::Value = client
        .post("/v1/link/user-0", &serde_json::json!({}))
        .await
        .unwrap();
    let link_state = started["link_state"].as_str().unwrap().to_owned();

    // Enode answers the DELETE after 15 s (within the request timeout).
    let slow = r.sim.handle.add_fault(enode_sim::Fault {
        kind: enode_sim::FaultKind::Latency { millis: 15_000 },
        user: None,
        target: enode_sim::Target::Api,
        trigger: enode_sim::Trigger::Always,
    });
    let first = tokio::spawn({
        let socket = socket.clone();
        async move {
            Client::new(&socket)
                .unwrap()
                .post::<_, serde_json::Value>("/v1/unlink/user-0", &serde_json::json!({}))
                .await
        }
    });
    let user0 = smartcharged::users::UserId::new("user-0").unwrap();
    let status = || {
        r.daemon
            .store()
            .user(&user0)
            .unwrap()
            .map(|u| u.status.to_string())
    };
    for _ in 0..100 {
        if status().as_deref() != Some("active") {
            break;
        }
        r.clock.sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status().as_deref(), Some("unlinking"));
    let users: Vec<serde_json::Value> = client.get("/v1/users").await.unwrap();
    assert_eq!(users[0]["status"], "unlinking", "{users:?}");
    assert!(
        r.daemon
            .store()
            .take_link_session(&link_state)
            .unwrap()
            .is_none(),
        "the pending link flow of an unlinked user is dropped"
    );
    for path in ["/v1/unlink/user-0", "/v1/link/user-0"] {
        let again = client
            .post::<_, serde_json::Value>(path, &serde_json::json!({}))
            .await;
        assert!(
            matches!(&again, Err(ClientError::Refused { status: 409, .. })),
            "{path}: {again:?}"
        );
    }
    let done = first.await.unwrap().unwrap();
    assert_eq!(done["in_store"], true, "{done}");
    r.sim.handle.remove_fault(slow);
    assert_eq!(
        r.sim.handle.stats().count_route("DELETE /users/{userId}"),
        1
    );
    assert_eq!(unlinks(r.daemon.store(), "user-0").len(), 1);
    assert!(status().is_none());

    // Unknown here: 404, nothing sent to Enode, nothing journaled; with
    // force, the DELETE goes out (an orphan at Enode).
    let config = r.dir.path().join("smartcharged.toml");
    std::fs::write(&config, &r.config_text).unwrap();
    let out = run(cli(&config, &["unlink", "user-0"])).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(err.contains("user user-0 is not linked here"), "{err}");
    assert_eq!(
        r.sim.handle.stats().count_route("DELETE /users/{userId}"),
        1
    );
    assert_eq!(unlinks(r.daemon.store(), "user-0").len(), 1);
    let out = run(cli(&config, &["unlink", "user-0", "--force"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        r.sim.handle.stats().count_route("DELETE /users/{userId}"),
        2
    );
    r.daemon.shutdown().await.unwrap();

    // Without a daemon the CLI says the same.
    let out = run(cli(&config, &["unlink", "nobody"])).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(err.contains("user nobody is not linked here"), "{err}");
}

/// An unlink cut short after its mark (a crash while Enode had not yet
/// answered) is finished by the next start: the user is deleted at Enode,
/// leaves the store with its tokens, and the journal gets its
/// one UNLINK line; `users` shows the mark meanwhile.
#[tokio::test(start_paused = true)]
async fn an_interrupted_unlink_is_finished_at_the_next_start() {
    let r = fleet::start(fleet::scenario(2, 2), "").await;
    r.clock.sleep(Duration::from_secs(3600)).await;
    r.daemon.shutdown().await.unwrap();
    let user0 = smartcharged::users::UserId::new("user-0").unwrap();
    {
        let store = smartcharged::store::Store::open(&r.store).unwrap();
        assert!(store.mark_unlinking(&user0).unwrap().is_some());
    }
    let config = r.dir.path().join("smartcharged.toml");
    std::fs::write(&config, &r.config_text).unwrap();
    let out = run(cli(&config, &["users"])).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("user-0 ") && l.contains(" unlinking ")),
        "{table}"
    );

    let (daemon, _events) = fleet::restart(&r.config_text, r.dir.path(), &r.clock).await;
    for _ in 0..600 {
        if daemon.store().user(&user0).unwrap().is_none() {
            break;
        }
        r.clock.sleep(Duration::from_secs(1)).await;
    }
    assert!(daemon.store().user(&user0).unwrap().is_none());
    assert!(daemon.store().tokens(&user0).unwrap().is_none());
    assert_eq!(r.sim.handle.stats().count("DELETE /users/{userId}", 204), 1);
    let lines = unlinks(daemon.store(), "user-0");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].reason.contains("interrupted"), "{lines:?}");
    // The other user runs on. (The stored control state of car-0-0 stays:
    // the store does not say whose car it is, and the loop of an unlinking
    // user is never started to learn it.)
    assert!(daemon.read_model().snapshot().vehicle("car-1-0").is_some());
    let user1 = smartcharged::users::UserId::new("user-1").unwrap();
    assert_eq!(
        daemon
            .store()
            .user(&user1)
            .unwrap()
            .unwrap()
            .status
            .to_string(),
        "active"
    );
    daemon.shutdown().await.unwrap();
}

/// A large fleet is answered a page at a time (100 vehicles) by `/status`,
/// `/v1/status` and `/v1/vehicles`, with where the page sits and the counts
/// of all vehicles; `smartcharged vehicles` reads every page, `status`
/// counts them all.
#[tokio::test(start_paused = true)]
async fn vehicles_are_answered_a_page_at_a_time() {
    let r = fleet::start(fleet::scenario(10, 150), "").await;
    let (listener, allowed) = smartcharged::admin::bind(&r.daemon.admin_config())
        .await
        .unwrap();
    r.daemon.serve_admin(listener, allowed);
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    r.daemon.serve_http(tcp);
    r.clock.sleep(Duration::from_secs(3600)).await;
    let client = Client::new(&r.daemon.admin_config().socket).unwrap();
    let first: serde_json::Value = client.get("/v1/status").await.unwrap();
    assert_eq!(first["vehicles"].as_array().unwrap().len(), 100);
    assert_eq!(
        first["vehicles_page"]["total"], 150,
        "{}",
        first["vehicles_page"]
    );
    assert_eq!(first["vehicles_page"]["next"], 2);
    let counted: u64 = first["vehicles_by_state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 150);
    let second: serde_json::Value = reqwest::get(format!("http://{addr}/status?page=2"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["vehicles"].as_array().unwrap().len(), 50);
    assert!(second["vehicles_page"]["next"].is_null());
    let page: Vec<serde_json::Value> = client.get("/v1/vehicles?page=2").await.unwrap();
    assert_eq!(page.len(), 50);

    let config = r.dir.path().join("smartcharged.toml");
    std::fs::write(&config, &r.config_text).unwrap();
    let out = run(cli(&config, &["vehicles", "--json"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<&str> = all.iter().map(|v| v["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 150);
    let out = run(cli(&config, &["status"])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Vehicles: 150 ("), "{text}");
    assert!(text.contains("… 50 more: smartcharged vehicles"), "{text}");
    r.daemon.shutdown().await.unwrap();
}

/// `vehicles` against a daemon that ignores `?page=` and sends all its
/// vehicles each time (an older daemon, still running after the CLI was
/// upgraded): the CLI lists each vehicle once and stops at the first
/// answer longer than a page, rather than asking for page after page of
/// the same vehicles.
#[tokio::test]
async fn vehicles_stops_when_the_daemon_does_not_page() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("old.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let all: Vec<serde_json::Value> = (0..150)
        .map(|i| serde_json::json!({ "id": format!("car-{i}") }))
        .collect();
    let counter = asked.clone();
    let app = axum::Router::new().route(
        "/v1/vehicles",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let all = all.clone();
            async move { axum::Json(all) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let out = run(cli(
        &dir.path().join("smartcharged.toml"),
        &["vehicles", "--json", "--socket", socket.to_str().unwrap()],
    ))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 150);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}
