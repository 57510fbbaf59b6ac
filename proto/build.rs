//! Compiles `shop/**/*.proto` with protox (pure Rust, no system `protoc`) and writes the
//! encoded descriptor set next to the generated code for server reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "shop/common/v1/common.proto",
    "shop/order/v1/order.proto",
    "shop/payment/v1/payment.proto",
    "shop/inventory/v1/inventory.proto",
    "shop/shipping/v1/shipping.proto",
    "shop/checkout/v1/checkout.proto",
    "shop/events/v1/events.proto",
    "shop/operations/v1/operations.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("shop_descriptor.bin"), fds.encode_to_vec())?;
    // `prost::Name` on every message: its full name finds its descriptor, which the
    // idempotency fingerprint (platform::idempotency) reads the request by.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
