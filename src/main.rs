//! Entry point: parse the command line, set up logs, run the subcommand,
//! map its error to an exit code and print it as one line with its causes.

use std::process::ExitCode;

use clap::Parser;
use smartcharged::cli::Cli;
use smartcharged::logging;

fn main() -> ExitCode {
    smartcharged::malloc::tune();
    let cli = Cli::parse();
    logging::init_with_default(cli.log_target(), cli.default_log_level());
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", smartcharged::cmd::one_line(&f.error));
            ExitCode::from(f.code)
        }
    }
}
