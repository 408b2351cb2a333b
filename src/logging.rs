//! Log setup: JSON lines with fields when the output is not a terminal
//! (journald keeps them), readable text on a terminal. The filter comes from
//! `SMARTCHARGED_LOG` (tracing's env-filter syntax), default `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Where log lines go. Commands whose stdout is their result (`plan`,
/// `link`'s URL, `users --json`) log to stderr; the daemon logs to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(target: Target) {
    let filter =
        EnvFilter::try_from_env("SMARTCHARGED_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = match target {
        Target::Stdout => std::io::stdout().is_terminal(),
        Target::Stderr => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (terminal, target) {
        (true, Target::Stdout) => builder.with_writer(std::io::stdout).try_init(),
        (true, Target::Stderr) => builder.with_writer(std::io::stderr).try_init(),
        (false, Target::Stdout) => builder.json().with_writer(std::io::stdout).try_init(),
        (false, Target::Stderr) => builder.json().with_writer(std::io::stderr).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
