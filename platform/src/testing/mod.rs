//! Test helpers (feature `testing`): a fresh database per test and the service started
//! in-process on port 0, the way `spawn_app()` works in zero-to-production.
//!
//! The admin connection comes from `TEST_DATABASE_URL`, else `DATABASE_URL`, else the
//! local default `postgres://postgres@127.0.0.1:5432/postgres`.
//!
//! [`broker`]: a NATS server of a test's own, what travels on it, and a service running
//! with its events on one ([`broker::WithBroker`]).

use std::{future::Future, net::SocketAddr, sync::Once, time::Duration};

use sqlx::{Connection, PgConnection};
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{config::ServerConfig, server::App};

pub mod broker;

pub use broker::{
    TestNats, WithBroker, events_of, nats_server_binary, publish, publish_again, wait_settled,
};

/// The admin URL tests create their databases through.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Logs of the code under test, shown only with `TEST_LOG=1`.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_test_writer()
                .try_init();
        }
    });
}

/// A database that exists for one test and is dropped after it.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    name: String,
    admin: String,
}

impl TestDb {
    /// Creates `test_<prefix>_<random>` on the admin server.
    pub async fn create(prefix: &str) -> Self {
        let admin = admin_url();
        let name = format!(
            "test_{}_{}",
            prefix.replace('-', "_"),
            uuid::Uuid::new_v4().simple()
        );
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("cannot reach Postgres at {admin} (set TEST_DATABASE_URL): {e}")
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = crate::db::database_url(&admin, &name);
        Self { url, name, admin }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs outside any runtime guarantee: use a short-lived one of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
    }
}

/// A service running in-process for one test.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub channel: Channel,
    /// The database this server created and owns; `None` when it shares another's.
    pub db: Option<TestDb>,
    /// The URL of the database it uses.
    pub database_url: String,
    /// What the server accepted (each connection should have TCP_NODELAY).
    pub connections: std::sync::Arc<crate::server::Connections>,
    task: JoinHandle<()>,
}

/// How to start the server under test.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub fault_injection: bool,
    /// The broker the server's events go to; `None` runs it without events.
    pub nats_url: Option<String>,
}

/// Creates a database, builds the app on port 0, serves it and waits for SERVING.
pub async fn spawn<F, Fut>(name: &str, options: Options, build: F) -> TestServer
where
    F: FnOnce(ServerConfig) -> Fut,
    Fut: Future<Output = anyhow::Result<App>>,
{
    let db = TestDb::create(name).await;
    let mut server = serve(&db.url, options, build).await;
    server.db = Some(db);
    server
}

/// Builds and serves an app on an existing database (a second replica, a restart) and
/// waits for SERVING.
pub async fn serve<F, Fut>(database_url: &str, options: Options, build: F) -> TestServer
where
    F: FnOnce(ServerConfig) -> Fut,
    Fut: Future<Output = anyhow::Result<App>>,
{
    init_tracing();
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        health_listen: None,
        database_url: database_url.to_owned(),
        database_max_connections: 5,
        fault_injection: options.fault_injection,
        shutdown_grace: Duration::from_secs(5),
        reflection: true,
        nats_url: options.nats_url,
        nats_stream: crate::events::StreamLimits::default(),
        security: crate::security::Security::DevInsecure,
        max_in_flight: 1024,
        connections: crate::security::incoming::ConnectionLimits::default(),
        retention: crate::retention::Retention::default(),
    };
    let app = build(config).await.expect("build app");
    let addr = app.local_addr();
    let connections = app.connections();
    // Serves until the TestServer is dropped (or killed), which aborts the task.
    let task = tokio::spawn(async move {
        let _ = app.run_until(std::future::pending()).await;
    });
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_lazy();
    wait_serving(channel.clone()).await;
    TestServer {
        addr,
        channel,
        db: None,
        database_url: database_url.to_owned(),
        connections,
        task,
    }
}

/// Polls health until SERVING (at most ~10 s): readiness follows migrations.
pub async fn wait_serving(channel: Channel) {
    let mut client = HealthClient::new(channel);
    for _ in 0..200 {
        if let Ok(response) = client.check(HealthCheckRequest::default()).await
            && response.into_inner().status() == ServingStatus::Serving
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server never reported SERVING");
}

impl TestServer {
    /// The `http://` URL clients reach it at.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving at once, like a crash: no drain, no shutdown hooks. The database
    /// stays until the `TestServer` is dropped.
    pub fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fields named in a status's `BadRequest` details; panics unless INVALID_ARGUMENT.
pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The `ErrorInfo.reason` of a status, or empty.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// A request carrying fault-injection metadata for the call with idempotency key `key`.
pub fn with_fault<T>(message: T, fault: &str, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(
        crate::fault::FAULT_HEADER,
        fault.parse().expect("fault spec is ASCII"),
    );
    metadata.insert(
        crate::fault::KEY_HEADER,
        key.parse().expect("idempotency key is ASCII"),
    );
    request
}
