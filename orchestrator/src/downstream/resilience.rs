//! The client middleware of every downstream call, built from tower in one place.
//!
//! Each downstream RPC is wrapped as a `tower::Service<Call<Message>>` (prost messages
//! clone, a channel's HTTP body does not, and retry must clone), then layered, outermost
//! first — the first layer sees the request first:
//!
//! 1. `Timeout(step_deadline)`: the step's overall deadline, across attempts and backoff.
//! 2. `Retry(RetryPolicy)`: transient failures again, with full-jitter backoff, within
//!    the downstream's retry budget.
//! 3. `Breaker`: while the downstream keeps failing, wait it out within the step's
//!    deadline or fail fast; admits a call before it takes a concurrency permit.
//! 4. `GlobalConcurrencyLimit`: at most N calls in flight to the downstream.
//! 5. `Timeout(attempt_timeout)`: one attempt; also sent downstream as `grpc-timeout`.
//!
//! The concurrency permits are shared by every RPC of a downstream. The breaker and the
//! retry budget are per [`Lane`]: forward steps and compensations each have their own,
//! so one saga whose compensation keeps failing (retried until it succeeds, by the
//! rules) cannot open the breaker or drain the budget that healthy checkouts' forward
//! steps need.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;
use tower::{
    BoxError, ServiceBuilder, ServiceExt, limit::GlobalConcurrencyLimitLayer,
    retry::budget::TpsBudget, util::BoxCloneSyncService,
};

pub use super::call::{Call, CallMeta, Lane};
use super::{
    breaker::{Breaker, BreakerLayer, SharedBreaker},
    retry::RetryPolicy,
};
use crate::ids::IdempotencyKey;

/// The knobs, with defaults in `config.rs`.
#[derive(Debug, Clone)]
pub struct Resilience {
    pub attempt_timeout: Duration,
    pub step_deadline: Duration,
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub budget_percent: f32,
    pub budget_min_per_sec: u32,
    pub concurrency: usize,
    pub breaker_failures: u32,
    pub breaker_open_for: Duration,
    pub breaker_open_max: Duration,
}

/// A downstream RPC with its whole middleware stack.
pub type StepService<M, R> = BoxCloneSyncService<Call<M>, R, BoxError>;

/// A lane's breaker and retry budget.
#[derive(Debug, Clone)]
struct LaneState {
    breaker: Arc<SharedBreaker>,
    budget: Arc<TpsBudget>,
}

impl LaneState {
    fn new(downstream: &'static str, lane: Lane, settings: &Resilience) -> Self {
        Self {
            breaker: SharedBreaker::new(
                downstream,
                lane,
                Breaker::new(
                    settings.breaker_failures,
                    settings.breaker_open_for,
                    settings.breaker_open_max,
                ),
            ),
            budget: Arc::new(TpsBudget::new(
                Duration::from_secs(10),
                settings.budget_min_per_sec,
                settings.budget_percent / 100.0,
            )),
        }
    }
}

/// The shared state of one downstream service's stacks.
#[derive(Debug, Clone)]
pub struct Downstream {
    name: &'static str,
    settings: Resilience,
    forward: LaneState,
    compensation: LaneState,
    permits: Arc<Semaphore>,
}

impl Downstream {
    pub fn new(name: &'static str, settings: &Resilience) -> Self {
        Self {
            name,
            settings: settings.clone(),
            forward: LaneState::new(name, Lane::Forward, settings),
            compensation: LaneState::new(name, Lane::Compensation, settings),
            permits: Arc::new(Semaphore::new(settings.concurrency)),
        }
    }

    /// Wraps one RPC (`rpc` turns a prepared `tonic::Request` into its reply) in the
    /// stack described at the top of this module, counting against `lane`. Each answered
    /// attempt's time, from sending the request to its reply (an attempt cut by its
    /// timeout is not counted), is the histogram
    /// `downstream_attempt_duration_seconds{downstream, method}`: next to the service's
    /// own `rpc_server_duration_seconds`, it says what a hop costs beyond the work.
    pub fn stack<M, R, F, Fut>(&self, lane: Lane, method: &'static str, rpc: F) -> StepService<M, R>
    where
        M: Clone + Send + Sync + 'static,
        R: Send + 'static,
        F: Fn(tonic::Request<M>) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<R, tonic::Status>> + Send + 'static,
    {
        let s = &self.settings;
        let attempt_timeout = s.attempt_timeout;
        let step_deadline = s.step_deadline;
        let downstream = self.name;
        let call = tower::service_fn(move |call: Call<M>| {
            let request = prepare(&call, attempt_timeout, step_deadline);
            let reply = rpc(request);
            async move {
                let started = Instant::now();
                let reply = reply.await;
                metrics::histogram!(
                    "downstream_attempt_duration_seconds",
                    "downstream" => downstream,
                    "method" => method,
                )
                .record(started.elapsed().as_secs_f64());
                reply
            }
        });
        let lane = match lane {
            Lane::Forward => &self.forward,
            Lane::Compensation => &self.compensation,
        };
        let stack = ServiceBuilder::new()
            .timeout(step_deadline)
            .retry(RetryPolicy::new(
                self.name,
                s.max_retries,
                s.backoff_base,
                s.backoff_max,
                lane.budget.clone(),
            ))
            .layer(BreakerLayer::new(lane.breaker.clone(), step_deadline))
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(
                self.permits.clone(),
            ))
            .timeout(attempt_timeout)
            .service(call.map_err(BoxError::from));
        BoxCloneSyncService::new(stack)
    }
}

/// Builds the `tonic::Request` of one attempt: counts it, sets `grpc-timeout` to what is
/// left of the attempt and the step, and forwards idempotency key, faults and trace.
fn prepare<M: Clone>(call: &Call<M>, attempt: Duration, step: Duration) -> tonic::Request<M> {
    let number = call.meta.attempts.fetch_add(1, Ordering::Relaxed) + 1;
    let key = call.meta.key.as_ref().map_or("", IdempotencyKey::as_str);
    tracing::debug!(key, attempt = number, "downstream attempt");
    let left = step.saturating_sub(call.meta.started.elapsed());
    let mut request = tonic::Request::new(call.message.clone());
    request.set_timeout(attempt.min(left).max(Duration::from_millis(1)));
    let metadata = request.metadata_mut();
    // The current span's context when traces are exported, else the one we were given.
    let traceparent = if platform::telemetry::inject_current(metadata) {
        ""
    } else {
        call.meta.traceparent.as_str()
    };
    let headers = [
        (platform::fault::KEY_HEADER, key),
        (platform::fault::FAULT_HEADER, call.meta.fault.as_str()),
        ("traceparent", traceparent),
    ];
    for (name, value) in headers {
        if let (false, Ok(value)) = (value.is_empty(), value.parse()) {
            metadata.insert(name, value);
        }
    }
    request
}

/// Runs one call through its stack.
pub async fn send<M, R>(service: &StepService<M, R>, call: Call<M>) -> Result<R, BoxError>
where
    M: Send + 'static,
    R: Send + 'static,
{
    service.clone().oneshot(call).await
}
