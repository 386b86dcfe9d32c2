//! The `modelarts-operator` command: `run`, `inspect`, `crd`.

use clap::{Parser, Subcommand};
use modelarts_operator::{controller, crd, inspect};
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
    /// Run the operator: watch ModelArtsNodePools and keep their status in sync.
    Run(controller::RunArgs),
    /// Read one node pool once and print its summary (the status the operator would write).
    Inspect(inspect::InspectArgs),
    /// Print the ModelArtsNodePool CustomResourceDefinition as YAML.
    Crd,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => controller::run(args).await,
        Command::Inspect(args) => inspect::run(args).await,
        Command::Crd => crd::crd_yaml().map(|y| print!("{y}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
