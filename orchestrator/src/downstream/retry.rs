//! The retry policy of every downstream call: which failures are worth another attempt,
//! how long to wait (exponential backoff with full jitter), and the retry budget that
//! keeps a dead dependency from getting a retry storm.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tower::{
    BoxError,
    retry::{
        Policy,
        budget::{Budget, TpsBudget},
    },
};

use super::classify::retryable;

/// Full jitter: a uniform wait between zero and `min(max, base × 2^(retry-1))`.
pub fn full_jitter(retry: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
        .min(max);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(0..=millis))
}

/// A tower retry policy; tower clones it per request, so `retries_left` counts one
/// request's retries while the budget is shared by every call to the downstream.
#[derive(Clone)]
pub struct RetryPolicy {
    downstream: &'static str,
    retries_left: u32,
    retry: u32,
    base: Duration,
    max: Duration,
    budget: Arc<TpsBudget>,
}

impl std::fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("retries_left", &self.retries_left)
            .field("base", &self.base)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl RetryPolicy {
    pub fn new(
        downstream: &'static str,
        max_retries: u32,
        base: Duration,
        max: Duration,
        budget: Arc<TpsBudget>,
    ) -> Self {
        Self {
            downstream,
            retries_left: max_retries,
            retry: 0,
            base,
            max,
            budget,
        }
    }

    /// The decision, apart from tower: `Some(wait)` to retry after `wait`.
    pub fn decide<T>(&mut self, result: &Result<T, BoxError>) -> Option<Duration> {
        match result {
            Ok(_) => {
                self.budget.deposit();
                None
            }
            Err(error) if retryable(error) && self.retries_left > 0 => {
                if !self.budget.withdraw() {
                    tracing::warn!(%error, downstream = self.downstream, "retry budget exhausted: not retrying");
                    metrics::counter!("downstream_retry_budget_exhausted_total", "downstream" => self.downstream)
                        .increment(1);
                    return None;
                }
                metrics::counter!("downstream_retries_total", "downstream" => self.downstream)
                    .increment(1);
                self.retries_left -= 1;
                self.retry += 1;
                let wait = full_jitter(self.retry, self.base, self.max, &mut rand::rng());
                tracing::debug!(%error, retry = self.retry, ?wait, "retrying");
                Some(wait)
            }
            Err(_) => None,
        }
    }
}

impl<Req: Clone, Res> Policy<Req, Res, BoxError> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut Req,
        result: &mut Result<Res, BoxError>,
    ) -> Option<Self::Future> {
        self.decide(result).map(tokio::time::sleep)
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downstream::classify::BreakerOpen;
    use rand::{SeedableRng, rngs::StdRng};
    use tonic::Code;

    fn status(code: Code) -> Result<(), BoxError> {
        Err(Box::new(tonic::Status::new(code, "x")))
    }

    fn policy(retries: u32, budget: TpsBudget) -> RetryPolicy {
        RetryPolicy::new(
            "test-svc",
            retries,
            Duration::from_millis(10),
            Duration::from_millis(80),
            Arc::new(budget),
        )
    }

    fn generous() -> TpsBudget {
        TpsBudget::new(Duration::from_secs(10), 1000, 100.0)
    }

    #[test]
    fn transient_codes_and_timeouts_retry_business_errors_do_not() {
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::Aborted,
        ] {
            assert!(
                policy(1, generous()).decide(&status(code)).is_some(),
                "{code:?}"
            );
        }
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::NotFound,
            Code::AlreadyExists,
            Code::Internal,
        ] {
            assert!(
                policy(1, generous()).decide(&status(code)).is_none(),
                "{code:?}"
            );
        }
        let elapsed: Result<(), BoxError> = Err(Box::new(tower::timeout::error::Elapsed::new()));
        assert!(policy(1, generous()).decide(&elapsed).is_some());
        let open: Result<(), BoxError> = Err(Box::new(BreakerOpen));
        assert!(policy(1, generous()).decide(&open).is_none());
        assert!(policy(1, generous()).decide(&Ok(())).is_none());
    }

    #[test]
    fn retries_stop_after_the_configured_number() {
        let mut p = policy(2, generous());
        assert!(p.decide(&status(Code::Unavailable)).is_some());
        assert!(p.decide(&status(Code::Unavailable)).is_some());
        assert!(p.decide(&status(Code::Unavailable)).is_none());
    }

    #[test]
    fn backoff_stays_within_its_doubling_ceiling_and_the_cap() {
        let mut rng = StdRng::seed_from_u64(7);
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(80);
        for retry in 1..=8 {
            let ceiling = (base * 2u32.pow(retry - 1)).min(max);
            for _ in 0..200 {
                assert!(full_jitter(retry, base, max, &mut rng) <= ceiling);
            }
        }
        // Full jitter spreads waits over the whole range, not just near the ceiling.
        let waits: Vec<_> = (0..200)
            .map(|_| full_jitter(4, base, max, &mut rng))
            .collect();
        assert!(waits.iter().any(|w| *w < Duration::from_millis(20)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(60)));
    }

    #[test]
    fn an_empty_budget_stops_retries() {
        // No floor, and deposits earn only 1 retry per 10 successes.
        let mut p = policy(100, TpsBudget::new(Duration::from_secs(10), 0, 0.1));
        assert!(
            p.decide(&status(Code::Unavailable)).is_none(),
            "nothing deposited yet"
        );
        for _ in 0..10 {
            p.decide(&Ok(()));
        }
        assert!(p.decide(&status(Code::Unavailable)).is_some());
        assert!(
            p.decide(&status(Code::Unavailable)).is_none(),
            "budget spent"
        );
    }
}
