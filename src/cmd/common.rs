//! Pieces the subcommands share: the --config argument, loading the config
//! with exit code 78, opening the store, building the Enode client.

use std::path::PathBuf;

use clock::Clock;

use super::{exit, Failure};
use crate::config::{process_env, Config};
use crate::enode::Client;
use crate::store::{Store, StoreError};

/// The default config file (systemd's ConfigurationDirectory).
pub const DEFAULT_CONFIG: &str = "/etc/smartcharged/smartcharged.toml";

/// The `--config` option of commands that read the config.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArg {
    /// Config file.
    #[arg(long, short, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

/// Loads and validates the config; a bad config is exit code 78.
pub fn load_config(path: &std::path::Path) -> Result<Config, Failure> {
    let config = Config::load(path, &process_env).map_err(|e| Failure::new(exit::CONFIG, e))?;
    for w in &config.warnings {
        tracing::warn!(config = %path.display(), "{w}");
    }
    Ok(config)
}

/// Opens the store; a store held by another process is a temporary failure.
pub fn open_store(config: &Config) -> Result<Store, Failure> {
    Store::open(&config.store.path).map_err(|e| match e {
        StoreError::InUse { .. } => Failure::new(exit::TEMPFAIL, e),
        e => Failure::new(exit::FAILURE, e),
    })
}

/// The Enode client for the configured endpoints.
pub fn client(config: &Config, clock: &Clock) -> Result<Client, Failure> {
    Client::new(&config.enode, clock.clone()).map_err(|e| Failure::new(exit::CONFIG, e))
}

/// A current-thread runtime for commands that talk HTTP.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
