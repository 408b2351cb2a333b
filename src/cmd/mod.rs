//! One module per subcommand. Each `run` returns `Result<(), Failure>`; main
//! maps a [`Failure`] to its exit code and prints the error with its causes.

use std::fmt;

pub mod admin;
pub mod check_config;
pub mod common;
pub mod demo;
pub mod generate;
pub mod link;
pub mod plan;
pub mod prices;
pub mod run;
pub mod webhook;

/// sysexits.h codes used by the commands, so scripts and systemd can tell
/// bad input from bad configuration from a transient outage.
pub mod exit {
    /// A command failed for a reason not covered below.
    pub const FAILURE: u8 = 1;
    /// The input data was malformed (EX_DATAERR).
    pub const DATAERR: u8 = 65;
    /// A service the command needs is unavailable (EX_UNAVAILABLE).
    pub const UNAVAILABLE: u8 = 69;
    /// A temporary failure; retrying later may work (EX_TEMPFAIL).
    pub const TEMPFAIL: u8 = 75;
    /// Not allowed: the admin socket refused the caller (EX_NOPERM).
    pub const NOPERM: u8 = 77;
    /// The configuration is invalid (EX_CONFIG).
    pub const CONFIG: u8 = 78;
}

/// A command's error together with the exit code it maps to.
pub struct Failure {
    /// Process exit code (see [`exit`]).
    pub code: u8,
    /// What went wrong, with its cause chain.
    pub error: anyhow::Error,
}

impl Failure {
    /// An error with an explicit exit code.
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code,
            error: error.into(),
        }
    }
}

/// An error as one line with its causes, `a: b: c`. A cause whose text the
/// line already holds is skipped: many errors embed their cause in their own
/// message (so a log line with only `%e` is complete) and also report it as
/// their source, which would print it twice.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::new(exit::FAILURE, e)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit {}: {:#}", self.code, self.error)
    }
}

/// The result type of every subcommand.
pub type CmdResult = Result<(), Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("rejected: status 400 bad vendor")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start linking: {0}")]
    struct Outer(#[from] Inner);

    #[test]
    fn causes_are_printed_once() {
        let e = anyhow::Error::new(Outer(Inner)).context("link alice");
        assert_eq!(
            one_line(&e),
            "link alice: cannot start linking: rejected: status 400 bad vendor"
        );
        let io = anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write");
        assert_eq!(one_line(&io), "cannot write: disk full");
    }
}
