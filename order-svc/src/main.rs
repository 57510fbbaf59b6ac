//! The order-svc binary: [`order_svc::SERVICE`] run by the shared bootstrap.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    order_svc::SERVICE.run().await
}
