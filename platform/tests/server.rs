//! The server bootstrap as a client sees it, over a real socket.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use platform::{
    server::App,
    testing::{self, Options},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test]
async fn every_accepted_connection_has_tcp_nodelay() {
    let server = testing::spawn("nodelay-svc", Options::default(), |config| async move {
        Ok(App::builder("nodelay-svc", config).bind().await?)
    })
    .await;
    // Two more connections besides the one `spawn` waited on.
    for _ in 0..2 {
        let channel = tonic::transport::Endpoint::from_shared(server.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .unwrap();
    }
    let connections = &server.connections;
    assert!(connections.accepted() >= 3, "{connections:?}");
    assert_eq!(
        connections.with_nodelay(),
        connections.accepted(),
        "a connection without TCP_NODELAY waits ~40 ms on delayed ACKs"
    );
}
