//! `smartcharged plan`: plan one request or a batch from JSON.

/// Arguments of `smartcharged plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {}

/// Runs `smartcharged plan`.
pub fn run(_args: PlanArgs) -> super::CmdResult {
    Err(super::Failure::new(
        super::exit::FAILURE,
        anyhow::anyhow!("the plan command is not built yet"),
    ))
}
