//! The saga driver: runs one checkout to its end by asking the saga's rules what to do
//! next (`saga::rules`), making that step's call (`steps`) and writing the outcome before
//! moving on, so any replica can resume it from disk. It sequences; it decides nothing.
//!
//! Writes are batched where it is safe: a step's outcome and the next step's intent go in
//! one statement (the intent is still committed before the next call is made). Which
//! writes also wait for the WAL flush: `SagaChange::durability`.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::sync::watch;
use tracing::Instrument;

use crate::{
    downstream::{Clients, retry::full_jitter},
    driver::{
        lease::Leases,
        loaded::{Begin, DriveError, Saga},
    },
    feed::Feed,
    ids::{LeaseToken, SagaId},
    saga::{
        FailureReason, SagaStatus, Step,
        rules::{self, Action, Decision, Transition},
    },
    steps,
    store::{self, LeaseLost, WriteError},
};

/// Drives sagas for one orchestrator replica.
#[derive(Debug)]
pub struct Engine {
    pool: PgPool,
    clients: Clients,
    leases: Leases,
    backoff_base: Duration,
    backoff_max: Duration,
    /// Told of every write a driver commits, so waiters here wake at once.
    feed: Arc<Feed>,
    /// Set when the replica stops: drivers and recovery end without touching the saga.
    stop: watch::Sender<bool>,
}

impl Engine {
    pub fn new(
        pool: PgPool,
        clients: Clients,
        settings: &crate::config::Settings,
        feed: Arc<Feed>,
    ) -> Self {
        Self {
            pool,
            clients,
            leases: Leases::new(settings.lease),
            backoff_base: settings
                .resilience
                .backoff_base
                .max(Duration::from_millis(10)),
            backoff_max: settings.resilience.backoff_max,
            feed,
            stop: watch::channel(false).0,
        }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How long a lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.leases.duration()
    }

    /// Stops every driver and the recovery loop of this replica, as a crash would: their
    /// sagas stay as they are on disk and resume when the leases expire.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub(crate) async fn stopped(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stopped| *stopped).await;
    }

    /// Stops this replica's drivers, waits (up to `grace`) until they have, and hands
    /// their leases back, so another replica resumes those sagas without waiting for the
    /// leases to expire. A driver still writing when the lease goes is fenced out anyway;
    /// waiting makes the hand-over clean rather than merely safe.
    pub async fn shut_down(&self, grace: Duration) {
        let held = self.leases.tokens();
        self.stop();
        if tokio::time::timeout(grace, self.leases.drained())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "drivers still running at shutdown; releasing anyway"
            );
        }
        Leases::release(&self.pool, &held).await;
    }

    /// Drives a saga this replica holds the lease of, in the background. Its span is a
    /// child of the current one (PlaceOrder), or of `resumed_from` (a stored
    /// `traceparent`) when recovery resumes it, so a checkout stays one trace.
    pub fn spawn(
        self: &Arc<Self>,
        begin: Begin,
        resumed_from: Option<&str>,
    ) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        let saga_id = begin.saga_id();
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
                if let Err(error) = engine.drive(begin).await {
                    tracing::warn!(%error, "driver stopped; the saga resumes when its lease expires");
                }
            }
            .instrument(span),
        )
    }

    /// Resumes a parked saga this replica just claimed: records it back at what it was
    /// doing (`rules::resume`), then drives it.
    pub async fn resume_parked(self: &Arc<Self>, claim: store::Claim) -> Result<(), DriveError> {
        let (row, steps) = store::load(&self.pool, claim.saga_id)
            .await?
            .ok_or(DriveError::NotFound(claim.saga_id))?;
        let mut saga = Saga::from_rows(row, steps, claim.lease)?;
        // Parked when claimed and not now: another ResumeCheckout claimed it after this
        // one and resumed it first (only a lease holder changes a saga). Its driver has
        // it; this claim's lease is gone.
        let resumed = rules::resume(&saga.state)
            .ok_or_else(|| DriveError::from(WriteError::from(LeaseLost(saga.id))))?;
        self.commit(&mut saga, resumed).await?;
        tracing::warn!(saga_id = %saga.id, status = %saga.state.status, "parked saga resumed by an operator");
        self.spawn(Begin::Held(Box::new(saga)), Some(&claim.traceparent));
        Ok(())
    }

    /// Drives a saga until it ends, renewing its lease meanwhile.
    pub async fn drive(&self, begin: Begin) -> Result<(), DriveError> {
        let (saga_id, lease) = (begin.saga_id(), begin.lease());
        let _held = self.leases.hold(lease);
        let mut saga = match begin {
            Begin::Held(saga) => *saga,
            Begin::Stored { saga_id, lease } => self.load(saga_id, lease).await?,
        };
        tokio::select! {
            biased;
            () = self.stopped() => Ok(()),
            lost = self.leases.keep(&self.pool, saga_id, lease) => Err(WriteError::from(lost).into()),
            done = self.run_from_disk_when_behind(&mut saga, lease) => done,
        }
    }

    async fn load(&self, saga_id: SagaId, lease: LeaseToken) -> Result<Saga, DriveError> {
        let (row, steps) = store::load(&self.pool, saga_id)
            .await?
            .ok_or(DriveError::NotFound(saga_id))?;
        Saga::from_rows(row, steps, lease)
    }

    /// Runs the saga; when a write finds the saga on disk behind the driver's copy (a
    /// Postgres crash took back unflushed records), goes on from what is on disk: the
    /// steps it replays repeat their keys, so the services answer as before.
    async fn run_from_disk_when_behind(
        &self,
        saga: &mut Saga,
        lease: LeaseToken,
    ) -> Result<(), DriveError> {
        loop {
            match self.run(saga).await {
                Err(DriveError::Write(WriteError::Behind(saga_id))) => {
                    tracing::warn!(%saga_id, "saga on disk is behind its driver (records lost in a crash): replaying from disk");
                    metrics::counter!("saga_replayed_from_disk_total").increment(1);
                    *saga = self.load(saga_id, lease).await?;
                }
                done => return done,
            }
        }
    }

    async fn run(&self, saga: &mut Saga) -> Result<(), DriveError> {
        loop {
            match rules::next_action(&saga.state) {
                Action::Forward(step) => self.forward(saga, step).await?,
                Action::Compensate(step) => self.compensate(saga, step).await?,
                Action::Complete => {
                    let end = rules::finish(&saga.state, SagaStatus::Completed);
                    self.commit(saga, end).await?;
                }
                Action::Cancel => {
                    let end = rules::finish(&saga.state, SagaStatus::Cancelled);
                    self.commit(saga, end).await?;
                }
                Action::Ended => {
                    record_end(saga);
                    return Ok(());
                }
                Action::Parked => return Ok(()),
            }
        }
    }

    /// Writes a transition (fenced by the lease and the version) and applies it to the
    /// driver's state.
    async fn commit(&self, saga: &mut Saga, transition: Transition) -> Result<(), WriteError> {
        store::write(
            &self.pool,
            saga.id,
            saga.fence,
            &transition.saga,
            &transition.steps,
        )
        .await?;
        saga.fence.version += 1;
        if let Some(order_id) = transition.saga.order_id {
            tracing::Span::current().record("order_id", order_id.to_string());
        }
        saga.state.apply(&transition);
        self.feed.changed(saga.id, Some(saga.fence.version));
        Ok(())
    }

    /// Runs one forward step to an outcome and records it.
    async fn forward(&self, saga: &mut Saga, step: Step) -> Result<(), DriveError> {
        if let Some(intent) = rules::start_forward(&saga.state, step) {
            self.commit(saga, intent).await?;
        }
        let mut round = 0;
        loop {
            let (attempts, outcome) = steps::forward(&self.clients, &saga.context(), step)
                .instrument(tracing::info_span!("step", step = step.code(), round))
                .await;
            match rules::after_forward(&saga.state, step, attempts, outcome) {
                Decision::Record(transition) => {
                    log_failure(step, &transition);
                    log_parked(step, &transition);
                    self.commit(saga, transition).await?;
                    return Ok(());
                }
                Decision::RetryLater(transition) => {
                    // Past the pivot the saga only goes forward.
                    round += 1;
                    let error = transition.steps.first().and_then(|c| c.error.as_ref());
                    tracing::warn!(%step, ?error, round, "step after the pivot failed; retrying");
                    self.commit(saga, transition).await?;
                    tokio::time::sleep(self.backoff(round)).await;
                }
            }
        }
    }

    /// Runs one compensation until it succeeds, recording every failed round.
    async fn compensate(&self, saga: &mut Saga, step: Step) -> Result<(), DriveError> {
        if let Some(start) = rules::start_compensation(&saga.state, step) {
            self.commit(saga, start).await?;
        }
        let mut round = 0;
        loop {
            let (attempts, result) = steps::compensate(&self.clients, &saga.context(), step)
                .instrument(tracing::info_span!("compensate", step = step.code(), round))
                .await;
            let result_label = if result.is_ok() {
                "succeeded"
            } else {
                "failed"
            };
            metrics::counter!("saga_compensations_total", "step" => step.code(), "result" => result_label)
                .increment(1);
            match rules::after_compensation(step, attempts, result) {
                Decision::Record(transition) => {
                    log_parked(step, &transition);
                    self.commit(saga, transition).await?;
                    return Ok(());
                }
                Decision::RetryLater(failed) => {
                    round += 1;
                    let error = failed.steps.first().and_then(|c| c.error.as_ref());
                    tracing::warn!(%step, ?error, round, "compensation failed; retrying");
                    self.commit(saga, failed).await?;
                    tokio::time::sleep(self.backoff(round)).await;
                }
            }
        }
    }

    /// The capped, jittered wait before another round of a step that must not give up.
    fn backoff(&self, round: u32) -> Duration {
        full_jitter(round, self.backoff_base, self.backoff_max, &mut rand::rng())
    }
}

/// Logs why a forward step turned the saga to compensation, if it did.
fn log_failure(step: Step, transition: &Transition) {
    let Some(reason) = transition.saga.failure_reason else {
        return;
    };
    if transition.saga.status != Some(SagaStatus::Compensating) {
        return; // parked instead: `log_parked` says so
    }
    let error = transition
        .steps
        .first()
        .and_then(|c| c.error.as_ref())
        .map_or("", |e| e.message.as_str());
    if reason == FailureReason::DependencyUnavailable {
        tracing::warn!(%step, %error, "dependency unavailable: compensating");
    } else {
        tracing::info!(%step, %reason, %error, "step refused: compensating");
    }
}

/// Says so, loudly, when a transition parks the saga: nothing moves it until a person
/// does.
fn log_parked(step: Step, transition: &Transition) {
    if transition.saga.status != Some(SagaStatus::NeedsAttention) {
        return;
    }
    let error = transition.steps.first().and_then(|c| c.error.as_ref());
    tracing::error!(
        %step,
        ?error,
        "saga needs attention: a service refused a call the saga cannot do without; \
         fix the cause, then ResumeCheckout"
    );
    metrics::counter!("saga_parked_total", "step" => step.code()).increment(1);
}

/// The saga's outcome in the log and the metrics.
fn record_end(saga: &Saga) {
    let status = saga.state.status.code();
    let reason = saga.state.failure_reason.map_or("", FailureReason::code);
    tracing::info!(status, reason, "saga ended");
    let took = (chrono::Utc::now() - saga.created_at)
        .to_std()
        .unwrap_or_default();
    metrics::counter!("saga_outcomes_total", "status" => status, "reason" => reason, "mode" => "orchestrated")
        .increment(1);
    metrics::histogram!("saga_duration_seconds", "status" => status).record(took.as_secs_f64());
}
