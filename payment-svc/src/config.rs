//! Every setting of payment-svc; `payment-svc --help` lists them.

use std::net::SocketAddr;

use clap::Parser;
use platform::config::{Command, ServiceArgs};

#[derive(Debug, Parser)]
#[command(name = "payment-svc", version, about = "Charges and refunds (gRPC)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// gRPC listen address.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50052")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub service: ServiceArgs,
}
