//! The `main` every binary shares: the healthcheck subcommand, the config check, tracing,
//! and serving until SIGTERM.

use std::{future::Future, net::SocketAddr, process::ExitCode};

use super::App;
use crate::{
    config::{Command, ServerConfig, ServiceArgs},
    security::{Principal, Security, SecurityError},
};

/// Completes on SIGTERM or Ctrl-C: what binaries pass to [`App::run_until`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Everything a binary's `main` does: run the `healthcheck` subcommand, or check the
/// config (errors to stderr, exit 2), start tracing, build the app and serve until
/// SIGTERM.
pub async fn run_binary<F, Fut>(
    name: &'static str,
    listen: SocketAddr,
    args: ServiceArgs,
    command: Option<Command>,
    build: F,
) -> ExitCode
where
    F: FnOnce(ServerConfig) -> Fut,
    Fut: Future<Output = anyhow::Result<App>>,
{
    if let Some(Command::Healthcheck { addr }) = command {
        let addr = addr.unwrap_or_else(|| listen.to_string());
        let security = match args.security.security() {
            Ok(security) => security,
            // A probe carries no secret and changes nothing: without TLS files it asks
            // in plaintext (a server that wants TLS then refuses, and the probe fails).
            Err(SecurityError::Unconfigured) => Security::DevInsecure,
            Err(error) => {
                eprintln!("{name} healthcheck: {error}");
                return ExitCode::from(2);
            }
        };
        let Some(server) = Principal::of_binary(name) else {
            eprintln!("{name} healthcheck: no certificate name is known for this binary");
            return ExitCode::from(2);
        };
        return crate::healthcheck::run(&addr, &security, server).await;
    }
    let config = match args.server_config(listen) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = crate::telemetry::init(name, args.log_format);
    config.security.announce(name);
    if let Some(addr) = args.metrics_listen {
        if let Err(error) = crate::metrics::install(addr) {
            tracing::error!(%error, %addr, "cannot serve metrics");
            telemetry.shutdown();
            return ExitCode::FAILURE;
        }
        tracing::info!(service = name, "metrics on http://{addr}/metrics");
    }
    let served = match build(config).await {
        Ok(app) => app
            .run_until(shutdown_signal())
            .await
            .map_err(anyhow::Error::from),
        Err(error) => Err(error),
    };
    // Flush traces last, after the drain.
    telemetry.shutdown();
    match served {
        Ok(()) => {
            tracing::info!(service = name, "stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(service = name, error = format!("{error:#}"), "failed");
            ExitCode::FAILURE
        }
    }
}
