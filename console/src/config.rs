//! The console's settings. Like every binary of the shop, each flag also reads an
//! environment variable, and `console --help` lists them.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use platform::{config::LogFormat, security::SecurityArgs};

/// The saga viewer: a web page of checkouts, each one's steps live, and a demo form.
#[derive(Debug, Parser)]
#[command(name = "console", version)]
pub struct Cli {
    /// Where the web page is served. 8080 is no port of the gRPC services (50050-50054),
    /// of their metrics (9100) nor of the Jaeger and Prometheus UIs (16686, 9090).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Log line format, as for every service.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The orchestrator's front door (CheckoutService, and DeadLetterService for operators):
    /// the only server the console talks to.
    #[arg(
        long,
        env = "ORCHESTRATOR_URL",
        default_value = "http://127.0.0.1:50050"
    )]
    pub orchestrator_url: String,

    /// Base URL of the Jaeger UI (for example http://127.0.0.1:16686). When set, each
    /// checkout links to a Jaeger search for its saga's trace; off when unset, since
    /// traces exist only when the shop exports them.
    #[arg(long, env = "JAEGER_UI_URL")]
    pub jaeger_ui_url: Option<String>,

    /// The origin browsers reach the console at, when something in front of it (an
    /// ingress, a proxy) serves it under another name or over HTTPS: for example
    /// `https://console.shop.example`. Only requests from this origin may change anything,
    /// and an `https` one makes the session cookie `Secure`. Unset: the console's origin
    /// is `http://` and the request's `Host` (a console opened where it runs).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// TLS files (the `console` certificate) for the connection to the orchestrator, or
    /// --dev-insecure. The console has no token of its own: every call carries the token
    /// of the person signed in (docs/SECURITY.md).
    #[command(flatten)]
    pub security: SecurityArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the binary can do besides serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Exit 0 only when the console at ADDR answers `GET /healthz` with 200 (for
    /// container health checks: the runtime image has no curl).
    Healthcheck {
        /// Address of the console to check; defaults to the listen address.
        #[arg(long)]
        addr: Option<String>,
    },
}
