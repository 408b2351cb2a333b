//! `smartcharged check-config PATH`: validate a config and print a one-line summary.

use std::path::PathBuf;

/// Arguments of `check-config`.
#[derive(clap::Args, Debug)]
pub struct CheckConfigArgs {
    /// The config file to check.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// Validates the file; exit 0 and a summary, or exit 78 with the located
/// error. A price file is read too: one that cannot be parsed is an error,
/// one without prices from now on gets a warning on stderr (the daemon
/// would plan on forecasts alone).
pub fn run(args: CheckConfigArgs) -> super::CmdResult {
    let config = super::common::load_config(&args.path)?;
    if let Some(p) = &config.prices {
        if let crate::prices::config::Provider::File { path, poll } = &p.provider {
            let source = crate::prices::file::FileSource::new(path, p.currency.clone(), *poll);
            let quote = source.read().map_err(|e| {
                super::Failure::new(
                    super::exit::CONFIG,
                    anyhow::anyhow!("{}: [prices.file]: {e}", args.path.display()),
                )
            })?;
            let now = clock::Clock::system().now();
            match quote.end() {
                Some(end) if end > now => {}
                end => eprintln!(
                    "warning: {}: the price file {} has no prices from now on (newest ends {}); plans would use forecasts from past prices only",
                    args.path.display(),
                    path.display(),
                    end.map_or("nowhere: it is empty".to_string(), |e| e.to_rfc3339()),
                ),
            }
        }
    }
    println!("{}", config.summary());
    Ok(())
}
