use std::process::ExitCode;

use clap::Parser;
use payment_svc::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    platform::server::run_binary(
        payment_svc::NAME,
        cli.listen,
        cli.service,
        cli.command,
        payment_svc::build,
    )
    .await
}
