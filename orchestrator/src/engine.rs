//! The saga driver: runs one checkout forward step by step, compensates on failure, and
//! writes every intent and outcome before moving on, so any replica can resume it.
//!
//! Writes are batched where it is safe: a step's outcome and the next step's intent go in
//! one transaction (the intent is still on disk before the next call is made).

use std::{sync::Arc, time::Duration};

use prost::Message;
use shop_proto::{
    checkout::v1::PlaceOrderRequest,
    inventory::v1::{self as inventory, PriceCartResponse},
    order::v1 as order,
    payment::v1 as payment,
    shipping::v1 as shipping,
};
use sqlx::PgPool;
use tokio::sync::broadcast;
use tonic_types::StatusExt;
use tower::BoxError;
use tracing::Instrument;
use uuid::Uuid;

use platform::metrics::code_name;

use crate::{
    downstream::Clients,
    resilience::{Call, StepService, send},
    retry::full_jitter,
    saga::{self, FailureReason, SagaStatus, Step, StepState, StepStatus},
    store::{self, SagaChange, SagaRow, StepChange, StepRow, WriteError},
};

/// Why a driver stopped before the saga ended. The saga is safe on disk either way: its
/// lease expires and recovery resumes it.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("database unavailable")]
    Db(#[from] sqlx::Error),
    #[error("saga {0} not found")]
    NotFound(Uuid),
    #[error("stored saga is unreadable")]
    Corrupt(#[from] prost::DecodeError),
}

/// What a forward step achieved.
#[derive(Debug, Default)]
struct Effects {
    order_id: Option<Uuid>,
    payment_id: Option<String>,
    tracking_number: Option<String>,
}

/// How a forward call ended.
#[derive(Debug)]
enum Outcome {
    Done(Effects),
    /// A business refusal: nothing took effect, compensate what came before.
    Refused {
        reason: FailureReason,
        error: String,
        code: String,
    },
    /// Retries exhausted, or a failure whose effect is unknown.
    Unavailable {
        error: String,
        code: String,
    },
}

/// The saga as the driver holds it.
#[derive(Debug)]
struct Saga {
    id: Uuid,
    status: SagaStatus,
    failure_reason: &'static str,
    request: PlaceOrderRequest,
    priced: PriceCartResponse,
    total_minor: i64,
    currency: String,
    order_id: Option<Uuid>,
    fault: String,
    traceparent: String,
    created_at: chrono::DateTime<chrono::Utc>,
    /// The lease token this driver holds; every write is fenced by it.
    lease: Uuid,
    steps: Vec<StepState>,
}

impl Saga {
    fn from_rows(row: SagaRow, steps: Vec<StepRow>, lease: Uuid) -> Result<Self, DriveError> {
        let reason = FailureReason::parse(&row.failure_reason).map_or("", FailureReason::as_str);
        Ok(Self {
            id: row.saga_id,
            status: SagaStatus::parse(&row.status).unwrap_or(SagaStatus::Running),
            failure_reason: reason,
            request: PlaceOrderRequest::decode(row.request.as_slice())?,
            priced: PriceCartResponse::decode(row.priced_cart.as_slice())?,
            total_minor: row.total_minor,
            currency: row.currency,
            order_id: row.order_id,
            fault: row.fault,
            traceparent: row.traceparent,
            created_at: row.created_at,
            lease,
            steps: steps
                .into_iter()
                .filter_map(|s| {
                    Some(StepState {
                        step: Step::parse(&s.step)?,
                        status: StepStatus::parse(&s.status)?,
                        uncertain: s.uncertain,
                    })
                })
                .collect(),
        })
    }

    fn status_of(&self, step: Step) -> StepStatus {
        self.steps
            .iter()
            .find(|s| s.step == step)
            .map_or(StepStatus::Pending, |s| s.status)
    }

    fn set(&mut self, step: Step, status: StepStatus, uncertain: bool) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.step == step) {
            s.status = status;
            s.uncertain = uncertain;
        }
    }

    fn order_id(&self) -> String {
        self.order_id.map(|id| id.to_string()).unwrap_or_default()
    }

    fn call<M>(&self, message: M, key: String) -> Call<M> {
        Call::new(message, key, &self.fault, &self.traceparent)
    }
}

/// Drives sagas for one orchestrator replica.
#[derive(Debug)]
pub struct Engine {
    pool: PgPool,
    clients: Clients,
    /// Lease tokens of the sagas this replica drives now. Each claim of a saga gets its
    /// own token, so a second claim (even by this replica) fences out the first driver.
    held: std::sync::Mutex<std::collections::HashSet<Uuid>>,
    lease: Duration,
    backoff_base: Duration,
    backoff_max: Duration,
    changed: broadcast::Sender<Uuid>,
    /// Set when the replica stops: drivers and recovery end without touching the saga.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Engine {
    pub fn new(pool: PgPool, clients: Clients, settings: &crate::config::Settings) -> Self {
        Self {
            pool,
            clients,
            held: std::sync::Mutex::default(),
            lease: settings.lease,
            backoff_base: settings
                .resilience
                .backoff_base
                .max(Duration::from_millis(10)),
            backoff_max: settings.resilience.backoff_max,
            changed: broadcast::channel(4096).0,
            stop: tokio::sync::watch::channel(false).0,
        }
    }

    /// The capped, jittered wait before another round of a step that must not give up.
    fn backoff(&self, round: u32) -> Duration {
        full_jitter(round, self.backoff_base, self.backoff_max, &mut rand::rng())
    }

    /// How long a lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Stops every driver and the recovery loop of this replica. Their sagas stay as
    /// they are on disk and resume when the leases expire (or are released).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    async fn stopped(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stopped| *stopped).await;
    }

    /// Saga ids as they change, for waiters and watchers in this replica.
    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.changed.subscribe()
    }

    /// Drives a saga this replica holds the lease of, in the background. Its span is a
    /// child of the current one (PlaceOrder), or of `resumed_from` (a stored
    /// `traceparent`) when recovery resumes it, so a checkout stays one trace.
    pub fn spawn(
        self: &Arc<Self>,
        saga_id: Uuid,
        lease: Uuid,
        resumed_from: Option<&str>,
    ) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        let span = match resumed_from {
            Some(_) => {
                tracing::info_span!(parent: None, "saga", %saga_id, order_id = tracing::field::Empty)
            }
            None => tracing::info_span!("saga", %saga_id, order_id = tracing::field::Empty),
        };
        if let Some(traceparent) = resumed_from {
            platform::telemetry::adopt_traceparent(&span, traceparent);
        }
        tokio::spawn(
            async move {
                if let Err(error) = engine.drive(saga_id, lease).await {
                    tracing::warn!(%error, "driver stopped; the saga resumes when its lease expires");
                }
            }
            .instrument(span),
        )
    }

    /// Drives a saga until it ends, renewing the lease `lease` meanwhile.
    pub async fn drive(&self, saga_id: Uuid, lease: Uuid) -> Result<(), DriveError> {
        self.hold(lease, true);
        let driven = async {
            let (row, steps) = store::load(&self.pool, saga_id)
                .await?
                .ok_or(DriveError::NotFound(saga_id))?;
            let mut saga = Saga::from_rows(row, steps, lease)?;
            tokio::select! {
                biased;
                () = self.stopped() => Ok(()),
                lost = self.keep_lease(saga_id, lease) => Err(lost.into()),
                done = self.run(&mut saga) => done,
            }
        }
        .await;
        self.hold(lease, false);
        driven
    }

    fn hold(&self, lease: Uuid, held: bool) {
        let mut leases = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held {
            leases.insert(lease);
        } else {
            leases.remove(&lease);
        }
    }

    /// Renews the lease every third of its length; returns when it is lost.
    async fn keep_lease(&self, saga_id: Uuid, lease: Uuid) -> WriteError {
        loop {
            tokio::time::sleep(self.lease / 3).await;
            match store::renew(&self.pool, saga_id, lease, self.lease).await {
                Ok(true) => {}
                Ok(false) => return store::LeaseLost(saga_id).into(),
                Err(error) => tracing::warn!(%error, "cannot renew lease; retrying"),
            }
        }
    }

    async fn run(&self, saga: &mut Saga) -> Result<(), DriveError> {
        loop {
            match saga.status {
                SagaStatus::Running => match saga::next_forward(&saga.steps) {
                    Some(step) => self.forward(saga, step).await?,
                    None => {
                        let done = SagaChange {
                            status: Some(SagaStatus::Completed),
                            ..SagaChange::default()
                        };
                        self.write(saga.id, saga.lease, &done, &[]).await?;
                        saga.status = SagaStatus::Completed;
                    }
                },
                SagaStatus::Compensating => self.compensate(saga).await?,
                SagaStatus::Completed | SagaStatus::Cancelled => {
                    tracing::info!(
                        status = saga.status.as_str(),
                        reason = saga.failure_reason,
                        "saga ended"
                    );
                    let took = (chrono::Utc::now() - saga.created_at)
                        .to_std()
                        .unwrap_or_default();
                    let status = saga.status.as_str();
                    metrics::counter!("saga_outcomes_total", "status" => status, "reason" => saga.failure_reason)
                        .increment(1);
                    metrics::histogram!("saga_duration_seconds", "status" => status)
                        .record(took.as_secs_f64());
                    return Ok(());
                }
            }
        }
    }

    async fn write(
        &self,
        saga_id: Uuid,
        lease: Uuid,
        saga: &SagaChange,
        steps: &[StepChange],
    ) -> Result<(), WriteError> {
        store::write(&self.pool, saga_id, lease, saga, steps).await?;
        let _ = self.changed.send(saga_id);
        Ok(())
    }

    /// Runs one forward step to an outcome and records it.
    async fn forward(&self, saga: &mut Saga, step: Step) -> Result<(), DriveError> {
        if saga.status_of(step) != StepStatus::Running {
            let intent = StepChange {
                status: Some(StepStatus::Running),
                start: true,
                ..StepChange::of(step)
            };
            self.write(saga.id, saga.lease, &SagaChange::default(), &[intent])
                .await?;
            saga.set(step, StepStatus::Running, false);
        }
        let mut round = 0;
        loop {
            let (attempts, outcome) = self
                .call_forward(saga, step)
                .instrument(tracing::info_span!("step", step = step.name(), round))
                .await;
            let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
            match outcome {
                Outcome::Done(effects) => {
                    saga.set(step, StepStatus::Succeeded, false);
                    saga.order_id = effects.order_id.or(saga.order_id);
                    if let Some(order_id) = effects.order_id {
                        tracing::Span::current().record("order_id", order_id.to_string());
                    }
                    let mut change = SagaChange {
                        order_id: effects.order_id,
                        payment_id: effects.payment_id,
                        tracking_number: effects.tracking_number,
                        ..SagaChange::default()
                    };
                    let mut steps = vec![StepChange {
                        status: Some(StepStatus::Succeeded),
                        add_attempts: attempts,
                        end: true,
                        ..StepChange::of(step)
                    }];
                    match saga::next_forward(&saga.steps) {
                        Some(next) => {
                            steps.push(StepChange {
                                status: Some(StepStatus::Running),
                                start: true,
                                ..StepChange::of(next)
                            });
                            saga.set(next, StepStatus::Running, false);
                        }
                        None => {
                            change.status = Some(SagaStatus::Completed);
                            saga.status = SagaStatus::Completed;
                        }
                    }
                    self.write(saga.id, saga.lease, &change, &steps).await?;
                    return Ok(());
                }
                Outcome::Refused { error, code, .. } | Outcome::Unavailable { error, code }
                    if step.after_pivot() =>
                {
                    // Past the pivot the saga only goes forward: try again, forever, and
                    // make it loud (a refusal here needs a person).
                    round += 1;
                    tracing::error!(%step, %error, %code, round, "step after the pivot failed; retrying");
                    let record = StepChange {
                        add_attempts: attempts,
                        error: Some((error, code)),
                        ..StepChange::of(step)
                    };
                    self.write(saga.id, saga.lease, &SagaChange::default(), &[record])
                        .await?;
                    let wait = self.backoff(round);
                    tokio::time::sleep(wait).await;
                }
                Outcome::Refused {
                    reason,
                    error,
                    code,
                } => {
                    tracing::info!(%step, reason = reason.as_str(), %error, "step refused: compensating");
                    // An earlier attempt that timed out may still land under this key, and
                    // ALREADY_EXISTS says the key did take effect: undo it to be sure
                    // (by key, which only blocks it if nothing landed).
                    let uncertain = attempts > 1 || code == "ALREADY_EXISTS";
                    return self
                        .fail(saga, step, attempts, reason, uncertain, (error, code))
                        .await;
                }
                Outcome::Unavailable { error, code } => {
                    tracing::warn!(%step, %error, "dependency unavailable: compensating");
                    let reason = FailureReason::DependencyUnavailable;
                    return self
                        .fail(saga, step, attempts, reason, true, (error, code))
                        .await;
                }
            }
        }
    }

    /// Records a failed forward step and turns the saga to compensation.
    async fn fail(
        &self,
        saga: &mut Saga,
        step: Step,
        attempts: i32,
        reason: FailureReason,
        uncertain: bool,
        error: (String, String),
    ) -> Result<(), DriveError> {
        let change = SagaChange {
            status: Some(SagaStatus::Compensating),
            failure_reason: Some(reason.as_str()),
            ..SagaChange::default()
        };
        let failed = StepChange {
            status: Some(StepStatus::Failed),
            uncertain: Some(uncertain),
            add_attempts: attempts,
            end: true,
            error: Some(error),
            ..StepChange::of(step)
        };
        self.write(saga.id, saga.lease, &change, &[failed]).await?;
        saga.set(step, StepStatus::Failed, uncertain);
        saga.status = SagaStatus::Compensating;
        saga.failure_reason = reason.as_str();
        Ok(())
    }

    /// Compensates, in reverse order, every step that took effect or may have; each
    /// compensation is retried until it succeeds. Then the saga ends CANCELLED.
    async fn compensate(&self, saga: &mut Saga) -> Result<(), DriveError> {
        for step in saga::to_compensate(&saga.steps) {
            if saga.status_of(step) != StepStatus::Compensating {
                let start = StepChange {
                    status: Some(StepStatus::Compensating),
                    ..StepChange::of(step)
                };
                self.write(saga.id, saga.lease, &SagaChange::default(), &[start])
                    .await?;
                saga.set(step, StepStatus::Compensating, false);
            }
            let mut round = 0;
            loop {
                let (attempts, result) = self
                    .call_compensation(saga, step)
                    .instrument(tracing::info_span!("compensate", step = step.name(), round))
                    .await;
                let outcome = if result.is_ok() {
                    "succeeded"
                } else {
                    "failed"
                };
                metrics::counter!("saga_compensations_total", "step" => step.name(), "result" => outcome)
                    .increment(1);
                let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
                match result {
                    Ok(()) => {
                        let done = StepChange {
                            status: Some(StepStatus::Compensated),
                            add_compensation_attempts: attempts,
                            compensation_end: true,
                            ..StepChange::of(step)
                        };
                        self.write(saga.id, saga.lease, &SagaChange::default(), &[done])
                            .await?;
                        saga.set(step, StepStatus::Compensated, false);
                        break;
                    }
                    Err(error) => {
                        round += 1;
                        let (error, code) = describe(&error);
                        tracing::warn!(%step, %error, round, "compensation failed; retrying");
                        let record = StepChange {
                            add_compensation_attempts: attempts,
                            error: Some((error, code)),
                            ..StepChange::of(step)
                        };
                        self.write(saga.id, saga.lease, &SagaChange::default(), &[record])
                            .await?;
                        let wait = self.backoff(round);
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        let skipped: Vec<StepChange> = saga
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Pending)
            .map(|s| StepChange {
                status: Some(StepStatus::Skipped),
                ..StepChange::of(s.step)
            })
            .collect();
        let end = SagaChange {
            status: Some(SagaStatus::Cancelled),
            ..SagaChange::default()
        };
        self.write(saga.id, saga.lease, &end, &skipped).await?;
        saga.status = SagaStatus::Cancelled;
        Ok(())
    }

    /// Makes the forward call of `step` through its resilience stack.
    async fn call_forward(&self, saga: &Saga, step: Step) -> (u32, Outcome) {
        let key = step.key(saga.id);
        let c = &self.clients;
        match step {
            // Priced before the saga starts (PlaceOrder needs the total to answer).
            Step::PriceCart => (0, Outcome::Done(Effects::default())),
            Step::CreateOrder => {
                let message = order::CreateOrderRequest {
                    idempotency_key: key.clone(),
                    customer_id: saga.request.customer_id.clone(),
                    lines: order_lines(&saga.priced),
                    shipping_address: saga.request.shipping_address.clone().map(|a| {
                        order::Address {
                            name: a.name,
                            line1: a.line1,
                            line2: a.line2,
                            city: a.city,
                            postal_code: a.postal_code,
                            country: a.country,
                        }
                    }),
                };
                outcome(
                    step,
                    attempt(&c.create_order, saga.call(message, key)).await,
                    |r| {
                        let order_id = r.order.and_then(|o| o.order_id.parse().ok());
                        Outcome::Done(Effects {
                            order_id,
                            ..Effects::default()
                        })
                    },
                )
            }
            Step::ChargePayment => {
                let message = payment::ChargeRequest {
                    idempotency_key: key.clone(),
                    order_id: saga.order_id(),
                    amount: Some(payment::Money {
                        amount_minor: saga.total_minor,
                        currency: saga.currency.clone(),
                    }),
                    payment_token: saga.request.payment_token.clone(),
                };
                outcome(
                    step,
                    attempt(&c.charge, saga.call(message, key)).await,
                    |r| {
                        let paid = r.payment.unwrap_or_default();
                        if paid.status() == payment::PaymentStatus::Captured {
                            Outcome::Done(Effects {
                                payment_id: Some(paid.payment_id),
                                ..Effects::default()
                            })
                        } else {
                            Outcome::Refused {
                                reason: FailureReason::from_decline(&paid.decline_reason),
                                error: format!(
                                    "payment {} declined: {}",
                                    paid.payment_id, paid.decline_reason
                                ),
                                code: String::new(),
                            }
                        }
                    },
                )
            }
            Step::ReserveStock => {
                let message = inventory::ReserveStockRequest {
                    idempotency_key: key.clone(),
                    order_id: saga.order_id(),
                    lines: saga
                        .priced
                        .lines
                        .iter()
                        .map(|l| inventory::CartLine {
                            sku: l.sku.clone(),
                            quantity: l.quantity,
                        })
                        .collect(),
                };
                outcome(
                    step,
                    attempt(&c.reserve_stock, saga.call(message, key)).await,
                    |_| Outcome::Done(Effects::default()),
                )
            }
            Step::CreateShipment => {
                let message = shipping::CreateShipmentRequest {
                    idempotency_key: key.clone(),
                    order_id: saga.order_id(),
                    address: saga
                        .request
                        .shipping_address
                        .clone()
                        .map(|a| shipping::Address {
                            name: a.name,
                            line1: a.line1,
                            line2: a.line2,
                            city: a.city,
                            postal_code: a.postal_code,
                            country: a.country,
                        }),
                };
                outcome(
                    step,
                    attempt(&c.create_shipment, saga.call(message, key)).await,
                    |r| {
                        Outcome::Done(Effects {
                            tracking_number: r.shipment.map(|s| s.tracking_number),
                            ..Effects::default()
                        })
                    },
                )
            }
            Step::ConfirmOrder => {
                let message = order::ConfirmOrderRequest {
                    idempotency_key: key.clone(),
                    order_id: saga.order_id(),
                };
                outcome(
                    step,
                    attempt(&c.confirm_order, saga.call(message, key)).await,
                    |_| Outcome::Done(Effects::default()),
                )
            }
        }
    }

    /// Makes the compensation call of `step`, found by the forward call's key so that it
    /// also blocks a forward call that has not arrived yet.
    async fn call_compensation(&self, saga: &Saga, step: Step) -> (u32, Result<(), BoxError>) {
        let key = step.compensation_key(saga.id);
        let forward_key = step.key(saga.id);
        let reason = if saga.failure_reason.is_empty() {
            "checkout cancelled"
        } else {
            saga.failure_reason
        };
        let c = &self.clients;
        match step {
            Step::CreateOrder => {
                let message = order::CancelOrderRequest {
                    idempotency_key: key.clone(),
                    order_id: String::new(),
                    create_idempotency_key: forward_key,
                    reason: reason.to_owned(),
                };
                drop_reply(attempt(&c.cancel_order, saga.call(message, key)).await)
            }
            Step::ChargePayment => {
                let message = payment::RefundRequest {
                    idempotency_key: key.clone(),
                    payment_id: String::new(),
                    charge_idempotency_key: forward_key,
                    reason: reason.to_owned(),
                };
                drop_reply(attempt(&c.refund, saga.call(message, key)).await)
            }
            Step::ReserveStock => {
                let message = inventory::ReleaseStockRequest {
                    idempotency_key: key.clone(),
                    reservation_id: String::new(),
                    reserve_idempotency_key: forward_key,
                };
                drop_reply(attempt(&c.release_stock, saga.call(message, key)).await)
            }
            Step::CreateShipment => {
                let message = shipping::CancelShipmentRequest {
                    idempotency_key: key.clone(),
                    shipment_id: String::new(),
                    create_idempotency_key: forward_key,
                };
                drop_reply(attempt(&c.cancel_shipment, saga.call(message, key)).await)
            }
            Step::PriceCart | Step::ConfirmOrder => (0, Ok(())),
        }
    }

    /// Takes over sagas whose owner stopped renewing, now and every `interval`.
    pub async fn recover_forever(self: Arc<Self>, interval: Duration) {
        tokio::select! {
            () = self.stopped() => {}
            () = self.recover_loop(interval) => {}
        }
    }

    async fn recover_loop(self: &Arc<Self>, interval: Duration) {
        loop {
            match store::claim_expired(&self.pool, self.lease, 64).await {
                Ok(claimed) => {
                    if !claimed.is_empty() {
                        tracing::info!(count = claimed.len(), "resuming sagas whose lease expired");
                    }
                    for (id, traceparent, lease) in claimed {
                        self.spawn(id, lease, Some(&traceparent));
                    }
                }
                Err(error) => tracing::warn!(%error, "recovery scan failed; will retry"),
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Stops this replica's drivers and hands their leases back, so another replica
    /// resumes those sagas without waiting for the leases to expire.
    pub async fn shut_down(&self) {
        // Read the tokens first: stopped drivers forget theirs as they exit.
        let held: Vec<Uuid> = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        self.stop();
        match store::release(&self.pool, &held).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "released saga leases"),
            Err(error) => tracing::warn!(%error, "could not release leases; they will expire"),
        }
    }
}

/// Sends one call and returns how many attempts it took.
async fn attempt<M, R>(service: &StepService<M, R>, call: Call<M>) -> (u32, Result<R, BoxError>)
where
    M: Clone + Send + 'static,
    R: Send + 'static,
{
    let result = send(service, call.clone()).await;
    (call.attempts().max(1), result)
}

fn drop_reply<R>((attempts, result): (u32, Result<R, BoxError>)) -> (u32, Result<(), BoxError>) {
    (attempts, result.map(|_| ()))
}

/// Classifies a forward call's result.
fn outcome<R>(
    step: Step,
    (attempts, result): (u32, Result<R, BoxError>),
    done: impl FnOnce(R) -> Outcome,
) -> (u32, Outcome) {
    let outcome = match result {
        Ok(reply) => done(reply),
        Err(error) => match error.downcast_ref::<tonic::Status>() {
            Some(status) if is_refusal(status.code()) => {
                let reason = status
                    .get_details_error_info()
                    .map(|i| i.reason)
                    .unwrap_or_default();
                Outcome::Refused {
                    reason: FailureReason::from_refusal(step, &reason),
                    error: status.message().to_owned(),
                    code: code_name(status.code()),
                }
            }
            _ => {
                let (error, code) = describe(&error);
                Outcome::Unavailable { error, code }
            }
        },
    };
    (attempts, outcome)
}

/// Codes that mean "no, and asking again will not change it": nothing took effect.
fn is_refusal(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        InvalidArgument | NotFound | FailedPrecondition | AlreadyExists | OutOfRange
    )
}

/// A failed call's message and gRPC code name, for the saga's record.
fn describe(error: &BoxError) -> (String, String) {
    if let Some(status) = error.downcast_ref::<tonic::Status>() {
        (status.message().to_owned(), code_name(status.code()))
    } else if error.is::<tower::timeout::error::Elapsed>() {
        ("timed out".to_owned(), "DEADLINE_EXCEEDED".to_owned())
    } else {
        (error.to_string(), "UNAVAILABLE".to_owned())
    }
}

/// The order lines of a priced cart (prices come from inventory, never the caller).
fn order_lines(priced: &PriceCartResponse) -> Vec<order::OrderLine> {
    let money = |m: &Option<inventory::Money>| {
        m.as_ref().map(|m| order::Money {
            amount_minor: m.amount_minor,
            currency: m.currency.clone(),
        })
    };
    priced
        .lines
        .iter()
        .map(|l| order::OrderLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: money(&l.unit_price),
            line_total: money(&l.line_total),
        })
        .collect()
}
