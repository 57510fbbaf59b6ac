use std::process::ExitCode;

use clap::Parser;
use shipping_svc::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    platform::server::run_binary(
        shipping_svc::NAME,
        cli.listen,
        cli.service,
        cli.command,
        shipping_svc::build,
    )
    .await
}
