//! `smartcharged demo`: the whole daemon against an in-process simulator.
//!
//! The daemon loop it needs (poller, controller) is not built yet, so the
//! command says so instead of pretending.

/// Arguments of `demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {}

/// Fails with a clear message until the daemon exists.
pub fn run(_args: DemoArgs) -> super::CmdResult {
    Err(super::Failure::new(
        super::exit::FAILURE,
        anyhow::anyhow!(
            "the demo is not available yet: it runs the daemon (smartcharged run), which is still being built"
        ),
    ))
}
