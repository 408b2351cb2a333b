//! Entry point: parse the command line, set up logs, run the subcommand,
//! map its error to an exit code and print it as one line with its causes.

use std::process::ExitCode;

use clap::Parser;
use smartcharged::cli::Cli;
use smartcharged::logging;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_target());
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
