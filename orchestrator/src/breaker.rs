//! A small circuit breaker as a tower layer. Hand-written rather than taken from a crate:
//! it is forty lines of state machine, its clock is a parameter so tests are exact, and
//! it counts only transient failures (a refused card says the payment service is fine).
//!
//! Closed → (N consecutive transient failures) → Open → (after `open_for`) → HalfOpen,
//! which lets one probe through: success closes, failure opens again.

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use tower::{BoxError, Layer, Service};

use crate::classify::{BreakerOpen, retryable};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_since: Instant },
}

/// The breaker's state machine.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: State,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            state: State::Closed { failures: 0 },
        }
    }

    /// Whether a call may go through now.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { probe_since: now };
                true
            }
            State::Open { .. } => false,
            // A probe that never reported back (its caller gave up) must not wedge it.
            State::HalfOpen { probe_since } if now >= probe_since + self.open_for => {
                self.state = State::HalfOpen { probe_since: now };
                true
            }
            State::HalfOpen { .. } => false,
        }
    }

    pub fn on_success(&mut self) {
        // While open, a success can only come from a call that started before the breaker
        // opened: it says nothing about now, so only the probe may close it.
        if !matches!(self.state, State::Open { .. }) {
            self.state = State::Closed { failures: 0 };
        }
    }

    pub fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            _ => State::Open {
                until: now + self.open_for,
            },
        };
    }

    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }
}

/// Shares one [`Breaker`] among every stack of a downstream.
#[derive(Debug, Clone)]
pub struct BreakerLayer {
    downstream: &'static str,
    breaker: Arc<Mutex<Breaker>>,
}

impl BreakerLayer {
    pub fn new(downstream: &'static str, breaker: Arc<Mutex<Breaker>>) -> Self {
        Self {
            downstream,
            breaker,
        }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = BreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            downstream: self.downstream,
            breaker: self.breaker.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BreakerService<S> {
    inner: S,
    downstream: &'static str,
    breaker: Arc<Mutex<Breaker>>,
}

fn lock(breaker: &Mutex<Breaker>) -> std::sync::MutexGuard<'_, Breaker> {
    breaker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S, Req> Service<Req> for BreakerService<S>
where
    S: Service<Req, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if !lock(&self.breaker).allow(Instant::now()) {
            return Box::pin(async { Err(BreakerOpen.into()) });
        }
        let future = self.inner.call(req);
        let breaker = self.breaker.clone();
        let downstream = self.downstream;
        Box::pin(async move {
            let result = future.await;
            let transient = result.as_ref().err().is_some_and(retryable);
            let mut breaker = lock(&breaker);
            let was_open = breaker.is_open();
            if transient {
                breaker.on_failure(Instant::now());
            } else {
                breaker.on_success();
            }
            if breaker.is_open() != was_open {
                tracing::warn!(
                    downstream,
                    open = breaker.is_open(),
                    "circuit breaker changed state"
                );
                metrics::gauge!("circuit_breaker_open", "downstream" => downstream)
                    .set(if breaker.is_open() { 1.0 } else { 0.0 });
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_recovers_through_one_probe() {
        let start = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(5));
        for _ in 0..2 {
            assert!(b.allow(start));
            b.on_failure(start);
        }
        assert!(!b.is_open(), "two failures are below the threshold");
        b.on_failure(start);
        assert!(b.is_open());
        assert!(
            !b.allow(start + Duration::from_secs(1)),
            "fails fast while open"
        );

        let later = start + Duration::from_secs(5);
        assert!(b.allow(later), "one probe after open_for");
        assert!(!b.allow(later), "only one probe at a time");
        b.on_success();
        assert!(!b.is_open());
        assert!(b.allow(later));
    }

    #[test]
    fn a_failed_probe_opens_again_and_success_resets_the_count() {
        let start = Instant::now();
        let mut b = Breaker::new(2, Duration::from_secs(1));
        b.on_failure(start);
        b.on_success();
        b.on_failure(start);
        assert!(!b.is_open(), "the success in between reset the count");
        b.on_failure(start);
        assert!(b.is_open());
        let probe = start + Duration::from_secs(1);
        assert!(b.allow(probe));
        b.on_failure(probe);
        assert!(!b.allow(probe + Duration::from_millis(500)));
        assert!(b.allow(probe + Duration::from_secs(1)));
    }

    #[test]
    fn a_late_success_does_not_close_an_open_breaker() {
        let start = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(5));
        b.on_failure(start);
        b.on_success();
        assert!(b.is_open());
        assert!(!b.allow(start + Duration::from_secs(1)));
    }

    #[test]
    fn a_lost_probe_does_not_wedge_the_breaker() {
        let start = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(1));
        b.on_failure(start);
        assert!(b.allow(start + Duration::from_secs(1)));
        // The probe's caller went away without reporting.
        assert!(b.allow(start + Duration::from_secs(2)));
    }
}
