//! The `modelarts-operator` command: `run`, `inspect`, `simulate`, `crd`.

use clap::{Parser, Subcommand};
use modelarts_operator::simulator;
use std::process::ExitCode;

/// Mirrors Huawei Cloud ModelArts Lite node pools into Kubernetes.
#[derive(Parser)]
#[command(name = "modelarts-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a ModelArts-compatible API on loopback from a data file, for demos and tests.
    Simulate(simulator::SimulateArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => simulator::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
