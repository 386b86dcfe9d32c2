//! A ModelArts-compatible HTTP server for demos and tests (placeholder: being written).

use crate::Result;

/// Flags of `modelarts-operator simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}

/// Runs the simulator until SIGINT/SIGTERM.
pub async fn run(_args: SimulateArgs) -> Result<()> {
    Ok(())
}
