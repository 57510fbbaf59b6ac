//! Server bootstrap, the same for every service: bind, serve health and reflection at
//! once, report SERVING only when the service is ready (migrations applied), one tracing
//! span per RPC, fault injection, and a bounded graceful drain on shutdown.
//!
//! ```text
//! let app = App::builder("order-svc", config)
//!     .add_service(OrderServiceServer::new(api))
//!     .ready_when(async move { migrate_until_ready(&pool, &MIGRATOR).await })
//!     .bind()
//!     .await?;
//! app.run_until(shutdown_signal()).await?;
//! ```

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::{body::Body, server::NamedService, service::Routes, transport::Server};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::{
    Service, limit::GlobalConcurrencyLimitLayer, load_shed::LoadShedLayer, util::MapResponseLayer,
};

pub use crate::security::incoming::Connections;

use crate::{
    deadline::DeadlineLayer,
    fault::FaultLayer,
    metrics::RpcMetricsLayer,
    security::{
        Security,
        access::AccessCheck,
        caller::BearerCheck,
        gate::GateLayer,
        incoming::{ConnectionLimits, ServerTls, incoming},
        tls::ClientAuth,
    },
    wire_errors,
};

/// Largest request message a service accepts (the default of 4 MiB is far above what a
/// 100-line order needs).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Calls one HTTP/2 connection may have open at once (its SETTINGS_MAX_CONCURRENT_STREAMS;
/// tonic's default is no limit). A well-behaved client queues beyond it; one that does not
/// gets its extra streams refused. The orchestrator's calls to a service share one
/// connection, as many as DOWNSTREAM_CONCURRENCY (256) at once.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;

/// What a generated tonic server (`FooServiceServer<Api>`) is, so that it can be routed,
/// advertised by name and cloned per connection. Spelled once here instead of at every
/// function that takes one.
pub trait GrpcService:
    Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// A bound server, not yet serving. Tests read [`App::local_addr`] when listening on port 0.
pub struct App {
    name: &'static str,
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The plaintext health-only listener (`HEALTH_LISTEN_ADDR`), when asked for.
    health_listener: Option<(TcpListener, SocketAddr)>,
    routes: Routes,
    service_names: Vec<&'static str>,
    ready: Option<BoxFuture<'static, ()>>,
    background: Option<BoxFuture<'static, ()>>,
    on_shutdown: Option<BoxFuture<'static, ()>>,
    fault_injection: bool,
    shutdown_grace: Duration,
    reflection: bool,
    connections: Arc<Connections>,
    security: Security,
    client_auth: ClientAuth,
    bearer: BearerCheck,
    max_in_flight: usize,
    connection_limits: ConnectionLimits,
    /// Probed once ready: the services are NOT_SERVING while it cannot be reached.
    database: Option<PgPool>,
}

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reflection descriptors are invalid")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed")]
    Transport(#[from] tonic::transport::Error),
    /// The task serving the listener panicked (or was cancelled): the binary must not
    /// look as if it stopped on request, so this exits non-zero like any failure.
    #[error("the server task crashed")]
    Crashed(#[source] tokio::task::JoinError),
}

impl App {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the plaintext health-only listener, when there is one.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// What the server has accepted so far (a handle that outlives `run_until`).
    pub fn connections(&self) -> Arc<Connections> {
        self.connections.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, reports NOT_SERVING and
    /// waits up to the grace period for in-flight calls.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        // The reporter starts the overall status at SERVING: say the truth until ready.
        set_all(
            &health_reporter,
            &self.service_names,
            ServingStatus::NotServing,
        )
        .await;

        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(shop_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health")
                .with_service_name("grpc.reflection.v1.ServerReflection")
                .with_service_name("grpc.reflection.v1alpha.ServerReflection");
            for name in &self.service_names {
                builder = builder.with_service_name(*name);
            }
            builder
        };
        let health_for_probes = health_service.clone();
        let mut routes = self.routes.add_service(health_service);
        if self.reflection {
            routes = routes
                .add_service(reflection().build_v1()?)
                .add_service(reflection().build_v1alpha()?);
        } else {
            tracing::info!(service = self.name, "server reflection off");
        }

        let name = self.name;
        // The same reporter behind a second, plaintext listener that serves health alone:
        // what the kubelet's gRPC probes can reach, since they do not speak TLS. It runs
        // until this function returns, so probes see NOT_SERVING during the drain.
        let _health_only = self.health_listener.map(|(listener, addr)| {
            tracing::info!(service = name, %addr, "health alone, plaintext");
            let health_only = Server::builder()
                .add_service(health_for_probes)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
            AbortOnDrop(tokio::spawn(async move {
                if let Err(error) = health_only.await {
                    tracing::error!(service = name, %error, "health listener failed");
                }
            }))
        });
        // Aborted with this future too, so a server dropped mid-run (a test's "crash")
        // leaves no readiness or background work behind.
        let readiness = AbortOnDrop({
            let reporter = health_reporter.clone();
            let names = self.service_names.clone();
            let ready = self.ready;
            let background = self.background;
            let database = self.database;
            tokio::spawn(async move {
                if let Some(ready) = ready {
                    ready.await;
                }
                set_all(&reporter, &names, ServingStatus::Serving).await;
                tracing::info!(service = name, "ready: SERVING");
                let watch = async move {
                    if let Some(pool) = database {
                        crate::readiness::watch_database(name, pool, reporter, names).await;
                    }
                };
                let background = async move {
                    if let Some(background) = background {
                        background.await;
                    }
                };
                tokio::join!(watch, background);
            })
        });

        // Over TLS: certificate files re-read when they change, and every call checked
        // against the access rules by its peer's certificate.
        let (tls, _reloading) = match &self.security {
            Security::DevInsecure => (None, None),
            Security::Tls(tls) => (
                Some(ServerTls {
                    tls: tls.clone(),
                    client_auth: self.client_auth,
                }),
                Some(AbortOnDrop(tls.watch())),
            ),
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = Server::builder()
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            .trace_fn(move |req| {
                let path = req.uri().path();
                // Health checks and reflection every few seconds would drown the RPCs.
                let span = if path.starts_with("/grpc.") {
                    tracing::debug_span!("rpc", service = name, rpc = %path, trace_id = tracing::field::Empty)
                } else {
                    tracing::info_span!(
                        "rpc",
                        otel.name = %path.trim_start_matches('/'),
                        service = name,
                        rpc = %path,
                        order_id = tracing::field::Empty,
                        key = tracing::field::Empty,
                        trace_id = tracing::field::Empty,
                    )
                };
                crate::telemetry::continue_trace(&span, req.headers());
                span
            })
            // Outermost first. A call that outlives its caller's deadline is answered
            // DEADLINE_EXCEEDED (not tonic's CANCELLED). Past MAX_IN_FLIGHT calls at once, the next is refused with
            // RESOURCE_EXHAUSTED at once (tonic's answer to tower's Overloaded) instead
            // of waiting in a queue that grows without end. Metrics see injected faults.
            .layer(DeadlineLayer)
            .layer(LoadShedLayer::new())
            .layer(GlobalConcurrencyLimitLayer::new(self.max_in_flight))
            .layer(RpcMetricsLayer::new(name))
            .layer(MapResponseLayer::new(wire_errors::correct))
            .layer(GateLayer(AccessCheck))
            .layer(GateLayer(self.bearer))
            .layer(FaultLayer::new(name, self.fault_injection))
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                incoming(self.listener, self.connections, tls, self.connection_limits),
                async {
                    let _ = stop_rx.await;
                },
            );
        let mut server = tokio::spawn(server);
        tracing::info!(service = name, addr = %self.local_addr, faults = self.fault_injection, "listening");

        tokio::select! {
            result = &mut server => {
                drop(readiness);
                return flatten(result);
            }
            () = shutdown => {}
        }
        tracing::info!(service = name, grace = ?self.shutdown_grace, "shutting down: draining in-flight calls");
        drop(readiness);
        set_all(
            &health_reporter,
            &self.service_names,
            ServingStatus::NotServing,
        )
        .await;
        let _ = stop_tx.send(());
        let drained = match tokio::time::timeout(self.shutdown_grace, &mut server).await {
            Ok(result) => flatten(result),
            Err(_) => {
                tracing::warn!(service = name, "grace period over: closing remaining calls");
                server.abort();
                Ok(())
            }
        };
        if let Some(on_shutdown) = self.on_shutdown {
            on_shutdown.await;
        }
        drained
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The server task's end as the binary's result: a transport error or a crashed task is
/// an error (exit 1 from [`run_binary`]), only a clean stop is `Ok`.
fn flatten(
    joined: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
) -> Result<(), ServeError> {
    match joined {
        Ok(result) => Ok(result?),
        Err(join) => Err(ServeError::Crashed(join)),
    }
}

async fn set_all(reporter: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}

mod binary;
mod builder;

pub use binary::{run_binary, shutdown_signal};
pub use builder::AppBuilder;

#[cfg(test)]
mod tests {
    use super::*;

    /// A server task that panics, as a bug in the accept loop would make it.
    fn serve_and_crash() -> Result<(), tonic::transport::Error> {
        std::panic::panic_any("the accept loop fell over")
    }

    #[tokio::test]
    async fn a_crashed_server_task_is_a_failure_not_a_clean_stop() {
        let crashed = tokio::spawn(async { serve_and_crash() }).await;
        let error = flatten(crashed).expect_err("a panic is not a clean stop");
        assert!(
            matches!(&error, ServeError::Crashed(join) if join.is_panic()),
            "{error:?}"
        );
        let stopped = tokio::spawn(async { Ok::<(), tonic::transport::Error>(()) }).await;
        assert!(flatten(stopped).is_ok(), "a clean stop is Ok");
    }
}
