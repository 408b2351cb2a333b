//! Entry point: parse the command line, run the subcommand, map its error to
//! an exit code and print it as one line with its cause chain.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = smartcharged::cli::Cli::parse();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
