//! The `modelarts-simulator` command: a ModelArts-compatible API on loopback for demos and tests.

use clap::Parser;
use modelarts_simulator::SimulateArgs;
use std::process::ExitCode;

/// Serves a ModelArts-compatible API on loopback from a data file, for demos and tests.
#[derive(Parser)]
#[command(name = "modelarts-simulator", version, about)]
struct Cli {
    #[command(flatten)]
    args: SimulateArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match modelarts_simulator::run(cli.args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
