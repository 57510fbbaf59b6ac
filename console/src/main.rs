use std::process::ExitCode;

use clap::Parser;
use console::{
    config::{Cli, Command},
    routes::Console,
    shop::Shop,
    views::checkout::TraceLinks,
};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { addr }) = &cli.command {
        let addr = addr.clone().unwrap_or_else(|| cli.listen.to_string());
        return console::healthcheck::run(&addr).await;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let security = match cli.security.security() {
        Ok(security) => security,
        Err(error) => {
            eprintln!("console: {error}");
            return ExitCode::from(2);
        }
    };
    security.announce("console");
    let token = match cli.token.attach(&security) {
        Ok(token) => token,
        Err(error) => {
            eprintln!("console: {error}");
            return ExitCode::from(2);
        }
    };
    let shop = match Shop::connect_lazy(&cli.orchestrator_url, &security, token) {
        Ok(shop) => shop,
        Err(error) => {
            eprintln!(
                "console: ORCHESTRATOR_URL `{}` is not a URL like http://127.0.0.1:50050: {error}",
                cli.orchestrator_url
            );
            return ExitCode::from(2);
        }
    };
    let listener = match console::bind(cli.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("console: {error}");
            return ExitCode::FAILURE;
        }
    };
    let traces = TraceLinks {
        jaeger_ui_url: cli.jaeger_ui_url.filter(|url| !url.trim().is_empty()),
    };
    tracing::info!(
        listen = %cli.listen,
        orchestrator = %cli.orchestrator_url,
        "console serving on http://{}",
        cli.listen
    );
    match console::serve(listener, Console { shop, traces }).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("console: {error}");
            ExitCode::FAILURE
        }
    }
}
