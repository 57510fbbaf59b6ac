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

use crate::{
    classify::{BreakerOpen, retryable},
    resilience::{Call, Lane},
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn admitted(admission: Admission) -> Ticket {
        match admission {
            Admission::Admitted(ticket) => ticket,
            Admission::WaitUntil(at) => panic!("expected admission, told to wait until {at:?}"),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_recovers_through_one_probe() {
        let start = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(5), Duration::from_secs(5));
        for _ in 0..2 {
            let t = admitted(b.admit(start));
            b.report(t, true, start);
        }
        assert!(!b.is_open(), "two failures are below the threshold");
        let t = admitted(b.admit(start));
        b.report(t, true, start);
        assert!(b.is_open());
        let reopen = start + Duration::from_secs(5);
        assert_eq!(
            b.admit(start + Duration::from_secs(1)),
            Admission::WaitUntil(reopen),
            "fails fast while open, and says until when"
        );
        let probe = admitted(b.admit(reopen));
        assert!(
            matches!(b.admit(reopen), Admission::WaitUntil(_)),
            "only one probe at a time"
        );
        b.report(probe, false, reopen);
        assert!(!b.is_open());
        admitted(b.admit(reopen));
    }

    #[test]
    fn a_late_failure_does_not_push_the_reopen_time_out() {
        let start = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(2), Duration::from_secs(2));
        let first = admitted(b.admit(start));
        let in_flight = admitted(b.admit(start));
        b.report(first, true, start);
        b.report(in_flight, true, start + Duration::from_secs(1));
        admitted(b.admit(start + Duration::from_secs(2)));
    }

    #[test]
    fn each_failed_probe_doubles_the_open_time_up_to_the_max_and_closing_resets_it() {
        let start = Instant::now();
        let secs = Duration::from_secs;
        let mut b = Breaker::new(1, secs(1), secs(5));
        let t = admitted(b.admit(start));
        b.report(t, true, start);
        let mut now = start;
        let mut open_times = Vec::new();
        for _ in 0..5 {
            let Admission::WaitUntil(until) = b.admit(now) else {
                panic!("open");
            };
            open_times.push(until - now);
            now = until;
            let probe = admitted(b.admit(now));
            b.report(probe, true, now);
        }
        assert_eq!(open_times, [secs(1), secs(2), secs(4), secs(5), secs(5)]);
        let Admission::WaitUntil(until) = b.admit(now) else {
            panic!("open");
        };
        let probe = admitted(b.admit(until));
        b.report(probe, false, until);
        assert!(!b.is_open(), "the probe's success closes it");
        let t = admitted(b.admit(until));
        b.report(t, true, until);
        assert_eq!(
            b.admit(until),
            Admission::WaitUntil(until + secs(1)),
            "open for the base time again"
        );
    }

    #[test]
    fn only_the_probe_answer_closes_or_reopens_a_half_open_breaker() {
        let start = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(1), Duration::from_secs(1));
        let old = admitted(b.admit(start));
        let older = admitted(b.admit(start));
        b.report(old, true, start);
        let at = start + Duration::from_secs(1);
        let probe = admitted(b.admit(at));
        b.report(older, false, at);
        assert!(b.is_open(), "a late success is not the probe's");
        b.report(probe, true, at);
        assert!(matches!(b.admit(at), Admission::WaitUntil(_)));
    }

    #[test]
    fn a_lost_probe_does_not_wedge_the_breaker() {
        let start = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(1), Duration::from_secs(8));
        let t = admitted(b.admit(start));
        b.report(t, true, start);
        admitted(b.admit(start + Duration::from_secs(1)));
        // The probe's caller went away without reporting.
        admitted(b.admit(start + Duration::from_secs(2)));
    }

    #[derive(Debug, Clone)]
    enum Event {
        /// Time passes, in milliseconds.
        Wait(u64),
        /// A call asks to go.
        Admit,
        /// The answer to the n-th admitted call still out (modulo how many are out).
        Answer { which: usize, transient: bool },
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0u64..1500).prop_map(Event::Wait),
            Just(Event::Admit),
            (any::<usize>(), any::<bool>())
                .prop_map(|(which, transient)| Event::Answer { which, transient }),
        ]
    }

    proptest! {
        /// Over any sequence of admissions, answers (late, early, lost) and waits:
        /// open means no admission before its time and a reopen time that never moves;
        /// half-open admits one probe per window; only answers to calls admitted in the
        /// current state change anything; the breaker opens only on the threshold-th
        /// consecutive current failure (for the base time) or a failed probe (for twice
        /// the last open time, at most the max), and closes only on the probe's success.
        #[test]
        fn the_state_machine_holds_its_rules(
            threshold in 1u32..4,
            events in proptest::collection::vec(event(), 1..200),
        ) {
            let open_for = Duration::from_secs(1);
            let open_max = Duration::from_secs(6);
            let start = Instant::now();
            let mut now = start;
            let mut b = Breaker::new(threshold, open_for, open_max);
            // The model: how long the breaker last opened for.
            let mut last_open = open_for;
            let mut out: Vec<Ticket> = Vec::new();
            let mut admitted_in_window = 0;
            for event in events {
                let before = (b.state, b.epoch);
                match event {
                    Event::Wait(ms) => now += Duration::from_millis(ms),
                    Event::Admit => match b.admit(now) {
                        Admission::Admitted(ticket) => {
                            if let State::Open { until } = before.0 {
                                prop_assert!(now >= until, "admitted while open");
                            }
                            if let State::HalfOpen { probe_until } = before.0 {
                                prop_assert!(now >= probe_until, "a second probe in one window");
                            }
                            if matches!(b.state, State::HalfOpen { .. }) {
                                if before.1 != b.epoch {
                                    admitted_in_window = 0;
                                }
                                admitted_in_window += 1;
                                prop_assert_eq!(admitted_in_window, 1);
                            }
                            out.push(ticket);
                        }
                        Admission::WaitUntil(at) => {
                            prop_assert!(at > now);
                            prop_assert!(b.is_open());
                            prop_assert_eq!((b.state, b.epoch), before, "waiting changes nothing");
                        }
                    },
                    Event::Answer { which, transient } => {
                        if out.is_empty() {
                            continue;
                        }
                        let ticket = out.remove(which % out.len());
                        b.report(ticket, transient, now);
                        if ticket.epoch != before.1 {
                            prop_assert_eq!((b.state, b.epoch), before, "a stale answer counted");
                            continue;
                        }
                        match (before.0, transient, b.state) {
                            (State::Closed { failures }, true, State::Closed { failures: after }) => {
                                prop_assert_eq!(after, failures + 1);
                                prop_assert!(after < threshold);
                            }
                            (State::Closed { failures }, true, State::Open { until }) => {
                                prop_assert_eq!(failures + 1, threshold);
                                prop_assert_eq!(until, now + open_for);
                                last_open = open_for;
                            }
                            (State::HalfOpen { .. }, true, State::Open { until }) => {
                                let doubled = (last_open * 2).min(open_max);
                                prop_assert_eq!(until, now + doubled);
                                prop_assert!(doubled <= open_max);
                                last_open = doubled;
                            }
                            (State::Closed { .. } | State::HalfOpen { .. }, false, State::Closed { failures }) => {
                                prop_assert_eq!(failures, 0);
                            }
                            (from, transient, to) => {
                                prop_assert!(false, "{from:?} --{transient}--> {to:?}");
                            }
                        }
                    }
                }
                if let (State::Open { until: was }, State::Open { until: is }) = (before.0, b.state) {
                    prop_assert!(before.1 != b.epoch || was == is, "the reopen time moved");
                }
            }
        }
    }
}
