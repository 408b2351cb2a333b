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
    /// Run the daemon against a built-in simulator: a day in about a minute.
    Demo(cmd::demo::DemoArgs),
    /// Run the daemon (under systemd: Type=notify).
    Run(cmd::run::RunArgs),
    /// Validate a config file and print a one-line summary.
    CheckConfig(cmd::check_config::CheckConfigArgs),
    /// Link a user's vehicles through Enode's OAuth flow.
    Link(cmd::link::LinkArgs),
    /// Delete a user at Enode and from the store.
    Unlink(cmd::link::UnlinkArgs),
    /// List linked users with status and token expiry.
    Users(cmd::link::UsersArgs),
    /// Plan charging for one request (or a batch) read as JSON.
    Plan(cmd::plan::PlanArgs),
    /// Print the current price curve.
    Prices(cmd::prices::PricesArgs),
    /// Show the running daemon: users, vehicles and why each is (not) charging.
    Status(cmd::admin::StatusArgs),
    /// List the running daemon's vehicles.
    Vehicles(cmd::admin::StatusArgs),
    /// Override a vehicle's plan: charge-now, stop, or auto (back to the plan).
    Override(cmd::admin::OverrideArgs),
    /// Set a one-off departure (and target) for the current or next plug-in.
    Trip(cmd::admin::TripArgs),
    /// Make a vehicle's plan again now.
    Replan(cmd::admin::ReplanArgs),
    /// Show the journal of commands, overrides and trips.
    Journal(cmd::admin::JournalArgs),
    /// The savings report: energy, cost, cost at once, saving, sessions, deadlines met.
    Report(cmd::admin::ReportArgs),
    /// Register, test and inspect the Enode Firehose webhook.
    Webhook(cmd::webhook::WebhookArgs),
    /// Write shell completions or manual pages (for packaging).
    #[command(hide = true)]
    Generate(cmd::generate::GenerateArgs),
}

impl Cli {
    /// The log filter when `SMARTCHARGED_LOG` is unset: the demo's output
    /// is its report, so it logs only warnings.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Demo(_) => "warn",
            _ => "info",
        }
    }

    /// Where this command's logs go: stderr, so stdout stays the result,
    /// except for the daemon.
    pub fn log_target(&self) -> crate::logging::Target {
        match self.command {
            // The daemon's logs are its output (journald keeps stdout).
            Command::Run(_) => crate::logging::Target::Stdout,
            _ => crate::logging::Target::Stderr,
        }
    }

    /// Runs the chosen subcommand.
    pub fn run(self) -> cmd::CmdResult {
        match self.command {
            Command::Demo(a) => cmd::demo::run(a),
            Command::Run(a) => cmd::run::run(a),
            Command::CheckConfig(a) => cmd::check_config::run(a),
            Command::Link(a) => cmd::link::run_link(a),
            Command::Unlink(a) => cmd::link::run_unlink(a),
            Command::Users(a) => cmd::link::run_users(a),
            Command::Plan(a) => cmd::plan::run(a),
            Command::Prices(a) => cmd::prices::run(a),
            Command::Status(a) => cmd::admin::run_status(a),
            Command::Vehicles(a) => cmd::admin::run_vehicles(a),
            Command::Override(a) => cmd::admin::run_override(a),
            Command::Trip(a) => cmd::admin::run_trip(a),
            Command::Replan(a) => cmd::admin::run_replan(a),
            Command::Journal(a) => cmd::admin::run_journal(a),
            Command::Report(a) => cmd::admin::run_report(a),
            Command::Webhook(a) => cmd::webhook::run(a),
            Command::Generate(a) => cmd::generate::run(a),
        }
    }
}
