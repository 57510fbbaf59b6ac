use std::process::ExitCode;

use clap::Parser;
use order_svc::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    platform::server::run_binary(
        order_svc::NAME,
        cli.listen,
        cli.service,
        cli.command,
        order_svc::build,
    )
    .await
}
