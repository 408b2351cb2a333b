//! `smartcharged prices`: fetches today's and tomorrow's prices from the
//! configured provider and prints them as a terminal chart or JSON.

use std::path::PathBuf;

use chrono::TimeDelta;
use clock::Clock;
use serde::Deserialize;

use super::{exit, Failure};
use crate::config::{locate, process_env};
use crate::prices::config::RawPricesConfig;
use crate::prices::{chart, schedule};

/// Arguments of `smartcharged prices`.
#[derive(clap::Args, Debug)]
pub struct PricesArgs {
    /// The config file whose `[prices]` section names the provider.
    #[arg(long, default_value = "/etc/smartcharged/smartcharged.toml")]
    pub config: PathBuf,
    /// Print the slots as JSON instead of a chart.
    #[arg(long)]
    pub json: bool,
}

/// The part of the config file this command reads; other sections are
/// ignored here and checked by the daemon.
#[derive(Deserialize)]
struct PricesOnly {
    /// `[prices]`
    prices: Option<RawPricesConfig>,
}

/// Runs `smartcharged prices`.
pub fn run(args: PricesArgs) -> super::CmdResult {
    let text = crate::config::read_text(&args.config)
        .map_err(|e| Failure::new(exit::CONFIG, anyhow::Error::new(e)))?;
    let raw: PricesOnly = toml::from_str(&text).map_err(|e| {
        Failure::new(
            exit::CONFIG,
            anyhow::anyhow!("{}: {}", args.config.display(), e.message()),
        )
    })?;
    let raw = raw.prices.ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            anyhow::anyhow!("{} has no [prices] section", args.config.display()),
        )
    })?;
    let base = args.config.parent().unwrap_or(std::path::Path::new("."));
    let cfg = raw
        .validate_with(base, &process_env)
        .map_err(|e| Failure::new(exit::CONFIG, locate(&text, &args.config, e)))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let clock = Clock::system();
    let now = clock.now();
    let source = cfg.source();
    let (from, _, to) = schedule::market_days(&cfg.feed, now);
    let quote = rt.block_on(source.fetch(from, to)).map_err(|e| {
        let code = if e.is_transient() {
            exit::TEMPFAIL
        } else {
            exit::UNAVAILABLE
        };
        Failure::new(
            code,
            anyhow::Error::new(e).context(format!("cannot fetch prices from {}", source.id())),
        )
    })?;
    let curve = cfg.tariff.apply(&quote);
    // Show the current slot and everything after it.
    let shown_from = now - TimeDelta::minutes(1);
    if args.json {
        println!("{:#}", chart::to_json(&curve, shown_from));
    } else {
        print!("{}", chart::render(&curve, cfg.tz, shown_from, 40));
    }
    Ok(())
}
