//! The server bootstrap as a client sees it, over a real socket.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use platform::{
    server::App,
    testing::{self, Options},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The overall health of the server at `url`, asked on a connection of its own.
async fn health_status(url: String) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status()
}

#[tokio::test]
async fn every_accepted_connection_has_tcp_nodelay() {
    let server = testing::spawn("nodelay-svc", Options::default(), |config| async move {
        Ok(App::builder("nodelay-svc", config).bind().await?)
    })
    .await;
    // Two more connections besides the one `spawn` waited on.
    for _ in 0..2 {
        health_status(server.url()).await;
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

/// The kubelet's gRPC probes speak no TLS, so a server can serve health alone in
/// plaintext on a second address (`HEALTH_LISTEN_ADDR`): it follows the server's status
/// (NOT_SERVING until ready, SERVING after) and answers nothing but health.
#[tokio::test]
async fn the_health_only_listener_follows_readiness_and_serves_nothing_else() {
    use std::{net::SocketAddr, time::Duration};

    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = platform::config::ServerConfig {
        listen: any_port,
        health_listen: Some(any_port),
        // Never connected to: this app has no database work.
        database_url: "postgres://nobody@127.0.0.1:1/none".into(),
        database_max_connections: 1,
        fault_injection: false,
        shutdown_grace: Duration::from_secs(1),
        reflection: true,
        nats_url: None,
        nats_stream_replicas: 1,
        security: platform::security::Security::DevInsecure,
        max_in_flight: 16,
        retention: platform::retention::Retention::default(),
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let app = App::builder("probed-svc", config)
        .ready_when(async move {
            let _ = ready_rx.await;
        })
        .bind()
        .await
        .unwrap();
    let health = app.health_addr().expect("a health-only address");
    assert_ne!(health, app.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));

    let url = format!("http://{health}");
    let status = || health_status(url.clone());
    assert_eq!(status().await, ServingStatus::NotServing);
    ready_tx.send(()).unwrap();
    let mut now = status().await;
    for _ in 0..50 {
        if now == ServingStatus::Serving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        now = status().await;
    }
    assert_eq!(now, ServingStatus::Serving);
    let refused = reflection_list(url.clone()).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Unimplemented,
        "the health-only listener serves health alone"
    );

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
