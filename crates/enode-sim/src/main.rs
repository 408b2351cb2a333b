//! `enode-sim`: serves the simulator until SIGINT or SIGTERM. Its first
//! stdout line is the bound address alone, so a script can start it on
//! port 0 and read where it went.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use clock::{Clock, VirtualClockSpec};
use enode_sim::{Scenario, SimHandle};

/// Enode API 1.3.10 and OAuth2 simulator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Scenario TOML file; without it the built-in scenario is served.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Simulated seconds per real second (e.g. 60 runs an hour a minute).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Benchmarks only: a virtual clock shared with another process,
    /// `ORIGIN@ANCHOR_MS*SPEED` (it shows ORIGIN when the host clock reads
    /// ANCHOR_MS, in Unix milliseconds, and runs SPEED times as fast).
    /// Give the daemon the same value (`smartcharged run --virtual-clock`).
    #[arg(long, value_name = "SPEC", conflicts_with = "time_scale")]
    virtual_clock: Option<VirtualClockSpec>,
    /// Seed of the RNG (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Refresh-token rotation grace period in seconds (1-300), a property
    /// of the authorization server (Ory Hydra's
    /// `oauth2.grant.refresh_token.rotation_grace_period`): a rotated
    /// refresh token stays usable this long after its first use. Off by
    /// default: replaying a rotated token revokes the grant. Overrides the
    /// scenario's `[refresh] grace_secs`.
    #[arg(long, value_name = "SECS")]
    refresh_grace: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("enode-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enode-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        anyhow::bail!("--time-scale must be a positive number");
    }
    let mut scenario = match &args.scenario {
        Some(p) => Scenario::load(p)?,
        None => Scenario::builtin(),
    };
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if let Some(grace) = args.refresh_grace {
        scenario.refresh.grace_secs = Some(grace);
    }
    let clock = match (args.virtual_clock, scenario.start, args.time_scale) {
        (Some(spec), _, _) => Clock::from_spec(&spec),
        (None, None, 1.0) => Clock::system(),
        (None, start, s) => Clock::scaled(start.unwrap_or_else(|| Clock::system().now()), s),
    };
    let handle = SimHandle::new(scenario, clock)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{addr}")?;
    out.flush()?;
    drop(out);
    enode_sim::serve(listener, handle, shutdown_signal()).await?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
