//! The `healthcheck` subcommand: asks a server for its overall health and exits 0 only
//! on SERVING. Container health checks call it, so it must be quick and never hang.

use std::{process::ExitCode, time::Duration};

use tonic::transport::Endpoint;

use crate::security::{Principal, Security, connect};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Checks the server at `addr` (`host:port` or `http://host:port`), which is `server`,
/// over the binary's own transport (its certificate, when TLS is on).
pub async fn run(addr: &str, security: &Security, server: Principal) -> ExitCode {
    match check(addr, security, server).await {
        Ok(ServingStatus::Serving) => {
            println!("SERVING");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            println!("{}", status.as_str_name());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("healthcheck {addr}: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn check(
    addr: &str,
    security: &Security,
    server: Principal,
) -> Result<ServingStatus, Box<dyn std::error::Error>> {
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri)?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    let channel = connect::channel(endpoint, security, server);
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await?;
    Ok(response.into_inner().status())
}
