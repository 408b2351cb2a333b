//! The systemd notifications on a real datagram socket, as systemd would
//! receive them. `NOTIFY_SOCKET` and `WATCHDOG_USEC` are process-wide, so
//! this binary holds a single test.

use std::time::Duration;

use smartcharged::daemon::notify;
use tokio::net::UnixDatagram;
use tokio_util::sync::CancellationToken;

/// Safety net for a notification that never comes; a passing run waits
/// only for the datagrams themselves.
const PATIENCE: Duration = Duration::from_secs(10);

/// Receives one datagram as text.
async fn next(socket: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, socket.recv(&mut buf))
        .await
        .expect("a notification within the safety timeout")
        .expect("recv");
    String::from_utf8(buf[..n].to_vec()).expect("utf-8 notification")
}

#[tokio::test]
async fn notifications_reach_the_socket_and_nothing_happens_without_one() {
    // Without NOTIFY_SOCKET and WATCHDOG_USEC everything is a no-op.
    std::env::remove_var("NOTIFY_SOCKET");
    std::env::remove_var("WATCHDOG_USEC");
    std::env::remove_var("WATCHDOG_PID");
    notify::ready();
    notify::status("idle");
    notify::reloading();
    notify::stopping();
    tokio::time::timeout(PATIENCE, notify::watchdog(CancellationToken::new()))
        .await
        .expect("the watchdog task returns at once when the watchdog is off");

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    std::env::set_var("NOTIFY_SOCKET", &path);

    notify::ready();
    assert_eq!(next(&socket).await, "READY=1\n");

    notify::status("planning 2 vehicles\nsecond line");
    assert_eq!(
        next(&socket).await,
        "STATUS=planning 2 vehicles second line\n"
    );

    notify::reloading();
    let reload = next(&socket).await;
    let lines: Vec<&str> = reload.lines().collect();
    assert_eq!(lines.len(), 2, "two fields in {reload:?}");
    assert_eq!(lines[0], "RELOADING=1");
    let usec = lines[1]
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("MONOTONIC_USEC in {reload:?}"));
    assert!(usec.parse::<u64>().expect("a number") > 0, "{reload:?}");
    notify::ready();
    assert_eq!(next(&socket).await, "READY=1\n");

    // systemd passes WATCHDOG_USEC (and the pid it is meant for); pings come
    // at half of it, the first at once.
    std::env::set_var("WATCHDOG_USEC", "200000");
    std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
    let cancel = CancellationToken::new();
    let watchdog = tokio::spawn(notify::watchdog(cancel.clone()));
    for _ in 0..3 {
        assert_eq!(next(&socket).await, "WATCHDOG=1\n");
    }
    cancel.cancel();
    tokio::time::timeout(PATIENCE, watchdog)
        .await
        .expect("the watchdog task ends on cancel")
        .expect("the watchdog task does not panic");

    // A watchdog meant for another process (a parent's) is not ours to ping.
    std::env::set_var("WATCHDOG_PID", "1");
    tokio::time::timeout(PATIENCE, notify::watchdog(CancellationToken::new()))
        .await
        .expect("the watchdog task returns at once for another pid's watchdog");

    // Drain pings the cancelled task may have sent before it saw the cancel,
    // then the final state must come next.
    notify::stopping();
    loop {
        let msg = next(&socket).await;
        if msg != "WATCHDOG=1\n" {
            assert_eq!(msg, "STOPPING=1\n");
            break;
        }
    }
}
