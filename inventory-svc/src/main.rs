//! The inventory-svc binary: [`inventory_svc::SERVICE`] run by the shared bootstrap.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    inventory_svc::SERVICE.run().await
}
