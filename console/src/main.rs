use std::process::ExitCode;

use clap::Parser;
use console::{
    config::{Cli, Command},
    routes::Console,
    shop::Shop,
    site::Site,
    views::checkout::TraceLinks,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { addr }) = &cli.command {
        let addr = addr.clone().unwrap_or_else(|| cli.listen.to_string());
        return console::healthcheck::run(&addr).await;
    }
    // The shop's own logs and traces: LOG_FORMAT, RUST_LOG and OTEL_EXPORTER_OTLP_ENDPOINT
    // mean here what they mean for every service.
    let telemetry = platform::telemetry::init("console", cli.log_format);
    let security = match cli.security.security() {
        Ok(security) => security,
        Err(error) => {
            eprintln!("console: {error}");
            return ExitCode::from(2);
        }
    };
    security.announce("console");
    if std::env::var_os("AUTH_TOKEN_FILE").is_some() {
        // Left over from when the console called the shop with an operator token of its
        // own; said, so that nobody believes the file is still in use.
        tracing::warn!(
            "AUTH_TOKEN_FILE is set but unused: the console sends the signed-in person's token, never one of its own; remove the setting"
        );
    }
    let site = match Site::new(cli.public_url.as_deref()) {
        Ok(site) => site,
        Err(error) => {
            eprintln!("console: {error}");
            return ExitCode::from(2);
        }
    };
    let shop = match Shop::connect_lazy(&cli.orchestrator_url, &security) {
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
        public_url = cli.public_url.as_deref().unwrap_or("(the request's Host)"),
        secure_cookies = site.secure(),
        "console serving on http://{}",
        cli.listen
    );
    let console = Console { shop, traces, site };
    let served = console::serve(listener, console).await;
    telemetry.shutdown();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("console: {error}");
            ExitCode::FAILURE
        }
    }
}
