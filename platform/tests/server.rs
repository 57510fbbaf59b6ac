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
        nats_stream: platform::events::StreamLimits::default(),
        security: platform::security::Security::DevInsecure,
        max_in_flight: 16,
        connections: platform::security::incoming::ConnectionLimits::default(),
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

/// Connections are bounded: past `MAX_CONNECTIONS` new clients wait in the backlog,
/// unaccepted; a peer that sends nothing is closed once its silence outlasts the preface
/// or idle timeout, which gives its place to a waiting one; a client that keeps calling
/// keeps its one connection.
#[tokio::test]
async fn silent_connections_are_closed_and_the_cap_holds_the_rest_back() {
    use std::time::{Duration, Instant};

    use platform::security::incoming::ConnectionLimits;
    use tokio::io::AsyncReadExt;

    let idle = Duration::from_millis(1500);
    let server = testing::spawn(
        "bounded-svc",
        Options::default(),
        move |mut config| async move {
            config.connections = ConnectionLimits {
                max_connections: 8,
                idle_timeout: idle,
            };
            Ok(App::builder("bounded-svc", config).bind().await?)
        },
    )
    .await;
    let before = server.connections.accepted();
    let opened = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..12 {
        silent.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first_round = server.connections.accepted() - before;
    assert!(
        first_round <= 8,
        "{first_round} accepted at once past a cap of 8"
    );
    // Each is closed by the server (EOF or reset; the server's own HTTP/2 settings come
    // first), the waiting ones once a place frees.
    for mut stream in silent {
        let mut sink = Vec::new();
        // Ok (EOF) or a reset: either way the server ended it, within the timeout.
        let _ended = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut sink))
            .await
            .expect("the server closes a silent connection");
    }
    let closed_after = opened.elapsed();
    assert!(
        server.connections.accepted() - before >= 12,
        "the waiting connections were accepted in turn"
    );
    assert!(
        closed_after >= idle,
        "closed before its time: {closed_after:?}"
    );

    // A client that calls every 300 ms keeps its connection through several timeouts.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest::default())
        .await
        .expect("the busy client's first call");
    let busy_from = server.connections.accepted();
    for _ in 0..14 {
        client
            .check(HealthCheckRequest::default())
            .await
            .expect("a busy connection stays open");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        server.connections.accepted() - busy_from,
        0,
        "the busy client never needed a new connection"
    );
}
