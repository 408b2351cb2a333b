//! Tells systemd what the daemon is doing (`sd_notify(3)`).
//!
//! The unit is `Type=notify`: systemd considers the service started only
//! when [`ready`] is sent, so `systemctl start` and units ordered after
//! smartcharged wait until the config is validated, the store is open and the
//! tasks run. [`stopping`] and [`reloading`] make `systemctl status` show the
//! truth during a drain or a reload, and [`watchdog`] keeps `WatchdogSec=`
//! satisfied, so a daemon whose runtime hangs is killed and restarted.
//!
//! Every function is a no-op when `NOTIFY_SOCKET` is unset (a terminal, a
//! test, another init system). A failed notification is logged and otherwise
//! ignored: losing a status line must never stop the daemon.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Tells systemd the daemon is up (`READY=1`): the config is valid, the
/// store is open and the tasks run. Also ends a reload started by
/// [`reloading`].
pub fn ready() {
    send(&[NotifyState::Ready], "ready");
}

/// Tells systemd the daemon is draining (`STOPPING=1`), so the stop is shown
/// as such and not mistaken for a crash.
pub fn stopping() {
    send(&[NotifyState::Stopping], "stopping");
}

/// Sets the free-form status line `systemctl status` shows (`STATUS=`).
/// Newlines would end the field early, so they become spaces.
pub fn status(text: &str) {
    let line = text.replace('\n', " ");
    send(&[NotifyState::Status(&line)], "status");
}

/// Tells systemd the daemon is reloading its config (`RELOADING=1`); send
/// [`ready`] when done, whether the new config was taken or refused.
///
/// `MONOTONIC_USEC` goes with it because systemd (253 and later, with
/// `Type=notify-reload`) uses it to tell this reload from an earlier one; the
/// monotonic clock is what the protocol asks for, not a wall-clock read.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now], "reloading"),
        Err(error) => {
            warn!(%error, "cannot read the monotonic clock for the reload notification");
            send(&[NotifyState::Reloading], "reloading");
        }
    }
}

/// Pings the systemd watchdog (`WATCHDOG=1`) at half the interval systemd
/// asked for (`WATCHDOG_USEC`, from `WatchdogSec=`) until `cancel` fires.
///
/// Returns at once when the watchdog is off. The pings come from a task on
/// the daemon's runtime, so a runtime that stops polling tasks (a blocked
/// worker, a deadlock) stops them too and systemd restarts the service.
pub async fn watchdog(cancel: CancellationToken) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        debug!("systemd watchdog is off");
        return;
    };
    debug!(
        timeout_ms = timeout.as_millis() as u64,
        "systemd watchdog is on"
    );
    ping_every(timeout / 2, cancel, || {
        send(&[NotifyState::Watchdog], "watchdog")
    })
    .await;
}

/// Calls `ping` now and then every `period` until `cancel` fires. Missed
/// ticks are skipped: a burst of late pings proves nothing more than one.
async fn ping_every(period: Duration, cancel: CancellationToken, mut ping: impl FnMut()) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => ping(),
        }
    }
}

/// Sends `states` to systemd; `what` names the notification in the log.
fn send(states: &[NotifyState<'_>], what: &'static str) {
    if let Err(error) = sd_notify::notify(states) {
        warn!(%error, notification = what, "cannot notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::sync::mpsc;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn pings_at_once_then_every_period_until_cancelled() {
        let cancel = CancellationToken::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(ping_every(
            Duration::from_secs(15),
            cancel.clone(),
            move || {
                tx.send(Instant::now()).expect("receiver alive");
            },
        ));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..4 {
            times.push(rx.recv().await.expect("a ping") - start);
        }
        assert_eq!(
            times,
            [0, 15, 30, 45].map(Duration::from_secs),
            "a ping at once, then one every period"
        );
        cancel.cancel();
        task.await.expect("ping task ends cleanly");
        assert!(
            rx.recv().await.is_none(),
            "no ping after cancellation (the sender is dropped with the task)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_token_stops_it_before_the_first_ping() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut pings = 0;
        ping_every(Duration::from_secs(1), cancel, || pings += 1).await;
        assert_eq!(pings, 0);
    }
}
