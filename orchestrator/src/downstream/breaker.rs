//! A small circuit breaker as a tower layer. Hand-written rather than taken from a crate:
//! its state machine is a few dozen lines, its clock is a parameter so tests are exact,
//! and it counts only transient failures (a refused card says the payment service is
//! fine).
//!
//! Closed → (N consecutive transient failures) → Open → (after the open time) → HalfOpen,
//! which admits one probe: its success closes the breaker, its failure opens it again for
//! twice as long as the last time, up to `open_max` (linkerd2-proxy's failure accrual
//! backs off the same way): a downstream that stays down is probed less and less often,
//! and one that comes back is found within `open_max`. Closing resets the open time to
//! `open_for`.
//!
//! Two rules keep the machine honest, as in linkerd2-proxy's breaker:
//!
//! - **Only answers to calls admitted in the current state count.** Every admission gets
//!   a [`Ticket`] stamped with the state's epoch; a response to a call admitted before the
//!   breaker last changed state says nothing about the downstream now and is ignored. So
//!   calls still in flight when it opened cannot push the reopen time out, and in
//!   HalfOpen only the probe's answer closes or reopens it.
//! - **The breaker gates admission, before a concurrency permit is taken.** A call that
//!   the breaker would refuse waits for it (the open time, or the probe's answer) when
//!   that fits in what is left of its step's deadline, and fails fast at once otherwise;
//!   it never holds one of the downstream's permits meanwhile.

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use tokio::sync::Notify;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::{
    call::{Call, Lane},
    classify::{BreakerOpen, retryable},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; if it never answers (its caller gave up), another is admitted
    /// at `probe_until` so a lost probe cannot wedge the breaker.
    HalfOpen {
        probe_until: Instant,
    },
}

/// Proof that a call was admitted, and in which state: only answers to calls admitted in
/// the current state are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    epoch: u64,
}

/// What the breaker says to a call that wants to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted(Ticket),
    /// Not now; ask again at this instant (or when the state changes).
    WaitUntil(Instant),
}

/// The breaker's state machine.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    /// The first open time after closed, and how long a lost probe is waited for.
    open_for: Duration,
    /// The longest open time, however many probes failed in a row.
    open_max: Duration,
    /// The open time of the last opening: doubled by each failed probe, up to `open_max`.
    opened_for: Duration,
    state: State,
    /// Bumped on every change of state; tickets carry it.
    epoch: u64,
}

impl Breaker {
    /// Opens after `threshold` consecutive transient failures, for `open_for` first and
    /// twice as long after each failed probe, at most `open_max` (at least `open_for`).
    pub fn new(threshold: u32, open_for: Duration, open_max: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            open_max: open_max.max(open_for),
            opened_for: open_for,
            state: State::Closed { failures: 0 },
            epoch: 0,
        }
    }

    /// Opens for `opened_for`, from `now`.
    fn open(&mut self, now: Instant) {
        self.enter(State::Open {
            until: now + self.opened_for,
        });
    }

    fn enter(&mut self, state: State) {
        self.state = state;
        self.epoch += 1;
    }

    /// Whether a call may go now.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed { .. } => {}
            State::Open { until } if now < until => return Admission::WaitUntil(until),
            State::HalfOpen { probe_until } if now < probe_until => {
                return Admission::WaitUntil(probe_until);
            }
            State::Open { .. } | State::HalfOpen { .. } => self.enter(State::HalfOpen {
                probe_until: now + self.open_for,
            }),
        }
        Admission::Admitted(Ticket { epoch: self.epoch })
    }

    /// Counts the answer to an admitted call: `transient` failures count against the
    /// downstream, anything else (a success, a refusal) for it. Answers to calls admitted
    /// in an earlier state are ignored.
    pub fn report(&mut self, ticket: Ticket, transient: bool, now: Instant) {
        if ticket.epoch != self.epoch {
            return;
        }
        match (self.state, transient) {
            (State::Closed { failures }, true) if failures + 1 < self.threshold => {
                self.state = State::Closed {
                    failures: failures + 1,
                };
            }
            (State::Closed { .. }, true) => {
                self.opened_for = self.open_for;
                self.open(now);
            }
            (State::HalfOpen { .. }, true) => {
                self.opened_for = (self.opened_for * 2).min(self.open_max);
                self.open(now);
            }
            (State::Closed { .. }, false) => self.state = State::Closed { failures: 0 },
            (State::HalfOpen { .. }, false) => self.enter(State::Closed { failures: 0 }),
            // No call is admitted while open, so no current ticket answers here.
            (State::Open { .. }, _) => {}
        }
    }

    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }
}

/// One [`Breaker`] shared by every stack that counts against it, with a wake-up for the
/// calls waiting on it.
#[derive(Debug)]
pub struct SharedBreaker {
    downstream: &'static str,
    lane: Lane,
    breaker: Mutex<Breaker>,
    changed: Notify,
}

impl SharedBreaker {
    /// `downstream` and `lane` label its logs and the `circuit_breaker_open` gauge.
    pub fn new(downstream: &'static str, lane: Lane, breaker: Breaker) -> Arc<Self> {
        Arc::new(Self {
            downstream,
            lane,
            breaker: Mutex::new(breaker),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until the breaker admits a call, unless that would be later than `deadline`:
    /// then fails fast.
    async fn admission(&self, deadline: Instant) -> Result<Ticket, BreakerOpen> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before reading the state, so a change in between still wakes us.
            changed.as_mut().enable();
            let retry_at = match self.lock().admit(Instant::now()) {
                Admission::Admitted(ticket) => return Ok(ticket),
                Admission::WaitUntil(at) if at > deadline => return Err(BreakerOpen),
                Admission::WaitUntil(at) => at,
            };
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(retry_at.into()) => {}
            }
        }
    }

    fn report(&self, ticket: Ticket, transient: bool) {
        let mut breaker = self.lock();
        let was_open = breaker.is_open();
        breaker.report(ticket, transient, Instant::now());
        let open = breaker.is_open();
        drop(breaker);
        if open != was_open {
            let (downstream, lane) = (self.downstream, self.lane.code());
            tracing::warn!(downstream, lane, open, "circuit breaker changed state");
            metrics::gauge!("circuit_breaker_open", "downstream" => downstream, "lane" => lane)
                .set(if open { 1.0 } else { 0.0 });
        }
        // Waiters re-ask: a probe's answer (either way) is news to them.
        self.changed.notify_waiters();
    }
}

/// Puts a [`SharedBreaker`] in front of a stack.
#[derive(Debug, Clone)]
pub struct BreakerLayer {
    breaker: Arc<SharedBreaker>,
    /// A call waits for the breaker no later than its step's start plus this.
    step_deadline: Duration,
}

impl BreakerLayer {
    pub fn new(breaker: Arc<SharedBreaker>, step_deadline: Duration) -> Self {
        Self {
            breaker,
            step_deadline,
        }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = BreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            breaker: self.breaker.clone(),
            step_deadline: self.step_deadline,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BreakerService<S> {
    inner: S,
    breaker: Arc<SharedBreaker>,
    step_deadline: Duration,
}

impl<S, M> Service<Call<M>> for BreakerService<S>
where
    S: Service<Call<M>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    M: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    /// Always ready: readiness of the inner stack (a concurrency permit) is awaited only
    /// after the breaker admitted the call, in [`Service::call`].
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call<M>) -> Self::Future {
        let inner = self.inner.clone();
        let breaker = self.breaker.clone();
        let deadline = call.meta.started + self.step_deadline;
        Box::pin(async move {
            let ticket = breaker.admission(deadline).await?;
            let result = inner.oneshot(call).await;
            breaker.report(ticket, result.as_ref().err().is_some_and(retryable));
            result
        })
    }
}

#[cfg(test)]
mod tests;
