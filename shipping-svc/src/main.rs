//! The shipping-svc binary: [`shipping_svc::SERVICE`] run by the shared bootstrap.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shipping_svc::SERVICE.run().await
}
