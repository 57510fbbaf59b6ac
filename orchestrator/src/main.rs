use std::process::ExitCode;

use clap::Parser;
use orchestrator::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = cli.saga.settings();
    platform::server::run_binary(
        orchestrator::NAME,
        cli.listen,
        cli.service,
        cli.command,
        |config| orchestrator::build(config, settings),
    )
    .await
}
