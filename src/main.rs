//! The `modelarts-operator` command: `run`, `inspect`, `crd`.

use clap::{Parser, Subcommand};
use modelarts_operator::{controller, crd, footprint, inspect};
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

fn main() -> ExitCode {
    // Before the runtime starts its threads, so none of them gets an arena beyond the cap.
    footprint::limit_malloc_arenas();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => controller::run(args).await,
            Command::Inspect(args) => inspect::run(args).await,
            Command::Crd => crd::crd_yaml().map(|y| print!("{y}")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
