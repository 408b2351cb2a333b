//! `smartcharged run`: the daemon. Validates the config before anything
//! binds or connects, starts every task, tells systemd it is ready, then
//! waits for SIGTERM/SIGINT (drain and exit 0) or SIGHUP (reload; a bad new
//! config keeps the old one running and says why).

use clock::{Clock, VirtualClockSpec};
use tracing::{error, info};

use super::common::{self, ConfigArg};
use super::{exit, CmdResult, Failure};
use crate::config::{process_env, Config};
use crate::daemon::notify;
use crate::daemon::run::{Daemon, Options};
use crate::daemon::signals::{Signal, Signals};

/// Arguments of `run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Benchmarks only: run on a virtual clock shared with enode-sim,
    /// `ORIGIN@ANCHOR_MS*SPEED` (see `clock::VirtualClockSpec`). Turns the
    /// cron tick of the price feed off, since the cron scheduler reads the
    /// host's clock. Never set in production.
    #[arg(long, value_name = "SPEC", hide = true)]
    pub virtual_clock: Option<VirtualClockSpec>,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(args: RunArgs) -> CmdResult {
    let config = common::load_config(&args.config.config)?;
    if config.prices.is_none() {
        return Err(Failure::new(
            exit::CONFIG,
            anyhow::anyhow!(
                "{}: the daemon needs a [prices] section (see config/prices-examples.toml)",
                config.source.display()
            ),
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let clock = match &args.virtual_clock {
            Some(spec) => {
                info!(clock = %spec, "running on a virtual clock (benchmark mode)");
                Clock::from_spec(spec)
            }
            None => Clock::system(),
        };
        let mut signals = Signals::new()?;
        let path = args.config.config.clone();
        let listen = config.http.listen;
        let daemon = Daemon::start(
            config,
            Options {
                clock: clock.clone(),
                cron: args.virtual_clock.is_none(),
                events: None,
                seed: rand::random(),
            },
        )
        .await
        .map_err(|e| match e.downcast_ref::<crate::store::StoreError>() {
            Some(crate::store::StoreError::InUse { .. }) => Failure::new(exit::TEMPFAIL, e),
            _ => Failure::new(exit::FAILURE, e),
        })?;
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            Failure::new(
                exit::UNAVAILABLE,
                anyhow::anyhow!("cannot listen on {listen}: {e}"),
            )
        })?;
        daemon.serve_http(listener);
        let admin_socket = daemon.admin_config();
        let (admin, allowed) = crate::admin::bind(&admin_socket)
            .await
            .map_err(|e| Failure::new(exit::UNAVAILABLE, e))?;
        daemon.serve_admin(admin, allowed);
        tokio::spawn(notify::watchdog(daemon.cancelled()));
        // The status line comes from the user load (`running; N users`).
        notify::ready();
        let stopped = daemon.cancelled();
        let fatal = loop {
            let signal = tokio::select! {
                s = signals.next() => s,
                // Only a task that cannot go on (the user load) cancels
                // before a signal does.
                _ = stopped.cancelled() => break true,
            };
            match signal {
                Signal::Terminate => break false,
                Signal::Reload => {
                    notify::reloading();
                    match Config::load(&path, &process_env) {
                        Ok(new) => daemon.reload(new),
                        Err(e) => {
                            error!(error = %e, "config reload failed; keeping the running config")
                        }
                    }
                    notify::ready();
                }
            }
        };
        info!("shutting down");
        notify::stopping();
        daemon.shutdown().await?;
        if fatal {
            return Err(Failure::new(
                exit::FAILURE,
                anyhow::anyhow!("the daemon stopped: its users could not be loaded (see the log)"),
            ));
        }
        Ok(())
    })
}
