//! The process signals the daemon acts on: SIGTERM and SIGINT drain and
//! stop it (`systemctl stop`, Ctrl-C), SIGHUP reloads the config
//! (`systemctl reload` runs `kill -HUP $MAINPID`).
//!
//! Create [`Signals`] before anything else starts: the default action of
//! SIGHUP is to kill the process, so a reload that arrives before the
//! handlers exist would look like a crash. Once installed, tokio keeps the
//! handlers for the life of the process; a second SIGTERM during the drain is
//! therefore delivered to [`Signals::next`] again rather than killing the
//! process, and systemd's `TimeoutStopSec=` (then SIGKILL) bounds the drain.

use std::io;

use tokio::signal::unix::{signal, SignalKind};

/// What a received signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: drain within the grace period, then exit 0.
    Terminate,
    /// SIGHUP: re-read the config; a bad one keeps the old one running.
    Reload,
}

/// The daemon's signal handlers, installed by [`Signals::new`].
#[derive(Debug)]
pub struct Signals {
    /// SIGTERM: `systemctl stop`, or systemd shutting the machine down.
    terminate: tokio::signal::unix::Signal,
    /// SIGINT: Ctrl-C when run on a terminal.
    interrupt: tokio::signal::unix::Signal,
    /// SIGHUP: `systemctl reload`.
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers for SIGTERM, SIGINT and SIGHUP. Must be called
    /// within a tokio runtime.
    pub fn new() -> io::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal. Signals of one kind that arrive before this
    /// is polled are merged into one, which is what a drain or a reload wants.
    pub async fn next(&mut self) -> Signal {
        // A stream ends (`None`) only when the runtime shuts down, and then
        // the daemon is stopping anyway.
        tokio::select! {
            _ = self.terminate.recv() => Signal::Terminate,
            _ = self.interrupt.recv() => Signal::Terminate,
            received = self.hangup.recv() => match received {
                Some(()) => Signal::Reload,
                None => Signal::Terminate,
            },
        }
    }
}
