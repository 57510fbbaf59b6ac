//! The payment-svc binary: [`payment_svc::SERVICE`] run by the shared bootstrap.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    payment_svc::SERVICE.run().await
}
