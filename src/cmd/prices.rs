//! `smartcharged prices`: prices the current price curve.

/// Arguments of `smartcharged prices`.
#[derive(clap::Args, Debug)]
pub struct PricesArgs {}

/// Runs `smartcharged prices`.
pub fn run(_args: PricesArgs) -> super::CmdResult {
    Err(super::Failure::new(
        super::exit::FAILURE,
        anyhow::anyhow!("the prices command is not built yet"),
    ))
}
