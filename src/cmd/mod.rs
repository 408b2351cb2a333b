//! One module per subcommand. Each `run` returns `Result<(), Failure>`; main
//! maps a [`Failure`] to its exit code and prints the error with its causes.

use std::fmt;

pub mod check_config;
pub mod common;
pub mod demo;
pub mod link;
pub mod plan;
pub mod prices;
pub mod run;

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
