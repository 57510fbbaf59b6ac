//! Every setting of order-svc; `order-svc --help` lists them.

use std::net::SocketAddr;

use clap::Parser;
use platform::config::{Command, ServiceArgs};

#[derive(Debug, Parser)]
#[command(
    name = "order-svc",
    version,
    about = "Orders and their status history (gRPC)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// gRPC listen address.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub service: ServiceArgs,
}
