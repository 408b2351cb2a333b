//! The command line: one subcommand per file in `src/cmd/`.

use clap::{Parser, Subcommand};

use crate::cmd;

/// smartcharged: charges electric vehicles when electricity is cheapest.
#[derive(Parser, Debug)]
#[command(name = "smartcharged", version, about)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand of smartcharged.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Plan charging for one request (or a batch) read as JSON.
    Plan(cmd::plan::PlanArgs),
    /// Print the current price curve.
    Prices(cmd::prices::PricesArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> cmd::CmdResult {
        match self.command {
            Command::Plan(a) => cmd::plan::run(a),
            Command::Prices(a) => cmd::prices::run(a),
        }
    }
}
