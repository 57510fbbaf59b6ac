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

/// Lists services over reflection v1alpha (what grpcurl 1.8 speaks).
async fn reflection_list(url: String) -> Result<Vec<String>, tonic::Status> {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await?
        .into_inner();
    let reply = replies.message().await?.unwrap();
    match reply.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => panic!("unexpected reflection reply {other:?}"),
    }
}

#[tokio::test]
async fn reflection_is_on_by_default_and_can_be_turned_off() {
    let on = testing::spawn("reflective-svc", Options::default(), |config| async move {
        Ok(App::builder("reflective-svc", config).bind().await?)
    })
    .await;
    let listed = reflection_list(on.url()).await.unwrap();
    assert!(
        listed.iter().any(|s| s == "grpc.health.v1.Health"),
        "{listed:?}"
    );

    let off = testing::spawn("quiet-svc", Options::default(), |mut config| async move {
        config.reflection = false;
        Ok(App::builder("quiet-svc", config).bind().await?)
    })
    .await;
    let refused = reflection_list(off.url()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
}
