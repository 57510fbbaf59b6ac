//! Seeds the demo catalog into a running inventory-svc (the compose `seed` job). Safe to
//! run again: products are upserted and stock set to the demo levels.

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use e2e::demo;
use platform::security::{Principal, SecurityArgs, connect};
use shop_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use tonic::transport::Endpoint;

#[derive(Debug, Parser)]
#[command(name = "shop-seed", about = "Seed the demo catalog into inventory-svc")]
struct Args {
    /// Where inventory-svc listens.
    #[arg(
        long,
        env = "INVENTORY_SVC_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    inventory_svc_url: String,
    /// How long to keep trying while inventory-svc starts.
    #[arg(long, default_value_t = 60)]
    wait_seconds: u64,
    /// TLS files (a certificate of the operator) or --dev-insecure.
    #[command(flatten)]
    security: SecurityArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let security = match args.security.security() {
        Ok(security) => security,
        Err(error) => {
            eprintln!("shop-seed: {error}");
            return ExitCode::from(2);
        }
    };
    let channel = match Endpoint::from_shared(args.inventory_svc_url.clone()) {
        Ok(endpoint) => connect::channel(endpoint, &security, Principal::InventorySvc),
        Err(error) => {
            eprintln!("shop-seed: bad --inventory-svc-url: {error}");
            return ExitCode::from(2);
        }
    };
    let mut inventory = InventoryServiceClient::new(channel);
    let mut last = None;
    for _ in 0..args.wait_seconds.max(1) {
        match demo::seed(&mut inventory).await {
            Ok(()) => {
                println!(
                    "shop-seed: demo catalog seeded into {}",
                    args.inventory_svc_url
                );
                return ExitCode::SUCCESS;
            }
            Err(status) => last = Some(status),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!(
        "shop-seed: {} did not accept the catalog: {last:?}",
        args.inventory_svc_url
    );
    ExitCode::FAILURE
}
