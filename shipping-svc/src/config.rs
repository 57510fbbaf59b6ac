//! Every setting of shipping-svc; `shipping-svc --help` lists them.

use std::net::SocketAddr;

use clap::Parser;
use platform::config::{Command, ServiceArgs};

#[derive(Debug, Parser)]
#[command(
    name = "shipping-svc",
    version,
    about = "Shipments and tracking numbers (gRPC)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// gRPC listen address.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50054")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub service: ServiceArgs,
}
