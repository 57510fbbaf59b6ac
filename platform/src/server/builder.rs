//! [`AppBuilder`]: what a binary declares (its services, readiness, background work and
//! shutdown tasks, the front door's token check) before it binds.

use std::{future::Future, net::SocketAddr, sync::Arc};

use futures::future::BoxFuture;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

use super::{App, GrpcService, ServeError};
use crate::{
    config::ServerConfig,
    security::{caller::BearerCheck, tls::ClientAuth},
};

/// Collects the gRPC services of one binary before binding.
pub struct AppBuilder {
    name: &'static str,
    config: ServerConfig,
    routes: RoutesBuilder,
    service_names: Vec<&'static str>,
    ready: Option<BoxFuture<'static, ()>>,
    background: Option<BoxFuture<'static, ()>>,
    on_shutdown: Option<BoxFuture<'static, ()>>,
    client_auth: ClientAuth,
    bearer: BearerCheck,
    database: Option<PgPool>,
}

impl App {
    /// Starts describing the server of the binary `name` (used in logs and fault specs).
    pub fn builder(name: &'static str, config: ServerConfig) -> AppBuilder {
        AppBuilder {
            name,
            config,
            routes: RoutesBuilder::default(),
            service_names: Vec::new(),
            ready: None,
            background: None,
            on_shutdown: None,
            client_auth: ClientAuth::Required,
            bearer: BearerCheck::default(),
            database: None,
        }
    }
}

impl AppBuilder {
    /// Adds a gRPC service; it is advertised by reflection and health under its name.
    pub fn add_service<S: GrpcService>(mut self, service: S) -> Self {
        self.service_names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Once ready, the server probes `pool` and reports its services NOT_SERVING while
    /// the database cannot be reached ([`crate::readiness`]).
    pub fn database(mut self, pool: PgPool) -> Self {
        self.database = Some(pool);
        self
    }

    /// The server reports SERVING only once `ready` completes (e.g. migrations applied).
    pub fn ready_when(mut self, ready: impl Future<Output = ()> + Send + 'static) -> Self {
        self.ready = Some(Box::pin(ready));
        self
    }

    /// Work that runs once the server is ready, until shutdown (e.g. a recovery loop).
    pub fn background(mut self, task: impl Future<Output = ()> + Send + 'static) -> Self {
        self.background = Some(Box::pin(task));
        self
    }

    /// Work to do after in-flight calls drained (e.g. hand back leases).
    pub fn on_shutdown(mut self, task: impl Future<Output = ()> + Send + 'static) -> Self {
        self.on_shutdown = Some(Box::pin(task));
        self
    }

    /// Serves the front door: over TLS, clients need no certificate, since customers
    /// prove who they are with the bearer token `bearer` checks (a certificate they do
    /// present must still be the CA's).
    pub fn front_door(mut self, bearer: BearerCheck) -> Self {
        self.client_auth = ClientAuth::Optional;
        self.bearer = bearer;
        self
    }

    /// Binds the listen address (port 0 picks a free port), and the health-only address
    /// when there is one: a taken port fails here, at start, not at the first probe.
    pub async fn bind(self) -> Result<App, ServeError> {
        let (listener, local_addr) = bind_tcp(self.config.listen).await?;
        let health_listener = match self.config.health_listen {
            Some(addr) => Some(bind_tcp(addr).await?),
            None => None,
        };
        Ok(App {
            name: self.name,
            listener,
            local_addr,
            health_listener,
            routes: self.routes.routes(),
            service_names: self.service_names,
            ready: self.ready,
            background: self.background,
            on_shutdown: self.on_shutdown,
            fault_injection: self.config.fault_injection,
            shutdown_grace: self.config.shutdown_grace,
            reflection: self.config.reflection,
            connections: Arc::default(),
            security: self.config.security,
            client_auth: self.client_auth,
            bearer: self.bearer,
            max_in_flight: self.config.max_in_flight,
            connection_limits: self.config.connections,
            database: self.database,
        })
    }
}

/// A listener on `addr` (port 0 picks a free port) and the address it got.
async fn bind_tcp(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    Ok((listener, bound))
}
