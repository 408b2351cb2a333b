//! `smartcharged check-config PATH`: validate a config and print a one-line summary.

use std::path::PathBuf;

/// Arguments of `check-config`.
#[derive(clap::Args, Debug)]
pub struct CheckConfigArgs {
    /// The config file to check.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// Validates the file; exit 0 and a summary, or exit 78 with the located error.
pub fn run(args: CheckConfigArgs) -> super::CmdResult {
    let config = super::common::load_config(&args.path)?;
    println!("{}", config.summary());
    Ok(())
}
