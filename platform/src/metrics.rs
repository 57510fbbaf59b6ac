//! Prometheus metrics: the exporter (text format on `--metrics-listen`, path `/metrics`),
//! the RPC layer every server has, and the database pool gauges.
//!
//! Names: `rpc_server_requests_total{service,method,code}` and
//! `rpc_server_duration_seconds{service,method}` for every RPC;
//! `db_pool_connections{service,state}`; `process_start_time_seconds` (restarts); the
//! orchestrator adds saga, retry, compensation and circuit-breaker metrics (see its
//! `metrics` names in docs).

use std::{
    net::SocketAddr,
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::future::BoxFuture;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::{Layer, Service};

/// Latency buckets (seconds) for every histogram. Alert rules compare against bucket
/// boundaries (PlaceOrder's latency SLO counts answers within 0.5 s:
/// deploy/prometheus/rules/slo.yml), so change these together with them.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Serves Prometheus text on `addr` (`GET /metrics`). Needs a running tokio runtime.
pub fn install(addr: SocketAddr) -> Result<(), metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(BUCKETS)?
        .install()?;
    // The exporter has no process collector, and a restart between two scrapes is
    // otherwise invisible: this is the conventional `process_start_time_seconds` (Unix
    // time), whose `changes()` count restarts (alert ProcessRestartingRepeatedly).
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    metrics::gauge!("process_start_time_seconds").set(started);
    Ok(())
}

/// Samples the pool's size every few seconds into `db_pool_connections`.
pub async fn watch_pool(service: &'static str, pool: sqlx::PgPool) {
    loop {
        let size = f64::from(pool.size());
        let idle = pool.num_idle() as f64;
        metrics::gauge!("db_pool_connections", "service" => service, "state" => "idle").set(idle);
        metrics::gauge!("db_pool_connections", "service" => service, "state" => "in_use")
            .set(size - idle);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Counts and times every RPC by method and gRPC code (health and reflection excluded).
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    service: &'static str,
}

impl RpcMetricsLayer {
    pub fn new(service: &'static str) -> Self {
        Self { service }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            service: self.service,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    service: &'static str,
}

impl<S, B, R> Service<http::Request<B>> for RpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let service = self.service;
        let future = self.inner.call(req);
        Box::pin(async move {
            let started = Instant::now();
            let result = future.await;
            if !method.starts_with("/grpc.") {
                // An error answer is trailers-only: its grpc-status is in the headers. A
                // success carries grpc-status 0 in the trailers.
                let code = match &result {
                    Ok(response) => tonic::Status::from_header_map(response.headers())
                        .map_or(tonic::Code::Ok, |s| s.code()),
                    Err(_) => tonic::Code::Unknown,
                };
                let labels = [("service", service.to_owned()), ("method", method)];
                metrics::histogram!("rpc_server_duration_seconds", &labels)
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!(
                    "rpc_server_requests_total",
                    "service" => service,
                    "method" => labels[1].1.clone(),
                    "code" => code_name(code),
                )
                .increment(1);
            }
            result
        })
    }
}

/// `DeadlineExceeded` → `DEADLINE_EXCEEDED`, as gRPC spells code names.
pub fn code_name(code: tonic::Code) -> String {
    if code == tonic::Code::Ok {
        return "OK".to_owned();
    }
    let camel = format!("{code:?}");
    let mut name = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::code_name;

    #[test]
    fn code_names_are_grpc_spelling() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(code_name(tonic::Code::Unavailable), "UNAVAILABLE");
        assert_eq!(
            code_name(tonic::Code::DeadlineExceeded),
            "DEADLINE_EXCEEDED"
        );
        assert_eq!(
            code_name(tonic::Code::FailedPrecondition),
            "FAILED_PRECONDITION"
        );
    }
}
