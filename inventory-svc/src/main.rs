use std::process::ExitCode;

use clap::Parser;
use inventory_svc::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    platform::server::run_binary(
        inventory_svc::NAME,
        cli.listen,
        cli.service,
        cli.command,
        inventory_svc::build,
    )
    .await
}
