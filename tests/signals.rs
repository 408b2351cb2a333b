//! Signals sent to this very process arrive as the daemon's [`Signal`]s.
//! Signal handlers are process-wide, so this binary holds a single test.

use std::process::Command;
use std::time::Duration;

use smartcharged::daemon::signals::{Signal, Signals};

/// Safety net for a signal that never arrives; a passing run waits only for
/// the signal itself.
const PATIENCE: Duration = Duration::from_secs(10);

/// Sends `signal` (a `kill` name such as `HUP`) to this process.
fn raise(signal: &str) {
    let pid = std::process::id().to_string();
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

#[tokio::test]
async fn hup_reloads_term_and_int_terminate() {
    let mut signals = Signals::new().expect("install signal handlers");
    for (sent, expected) in [
        ("HUP", Signal::Reload),
        ("TERM", Signal::Terminate),
        ("HUP", Signal::Reload),
        ("INT", Signal::Terminate),
    ] {
        raise(sent);
        let got = tokio::time::timeout(PATIENCE, signals.next())
            .await
            .unwrap_or_else(|_| panic!("SIG{sent} not seen"));
        assert_eq!(got, expected, "after SIG{sent}");
    }
}
