//! What one downstream call is, as every layer of the stack sees it: the message, the
//! metadata its attempts share, and the lane it counts against. Its own module so the
//! stack (`resilience`) and the breaker both depend on it, not on each other.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Instant,
};

use crate::ids::IdempotencyKey;

/// What travels with one downstream call besides its message.
#[derive(Debug)]
pub struct CallMeta {
    /// Idempotency key of the call, also sent as `idempotency-key` metadata; `None` for
    /// reads.
    pub key: Option<IdempotencyKey>,
    /// `x-fault` specs to forward (fault injection), empty for none.
    pub fault: String,
    /// W3C `traceparent` to forward, empty for none.
    pub traceparent: String,
    /// Attempts made so far (retries included), for the saga's record.
    pub attempts: AtomicU32,
    /// When the step started: no attempt's grpc-timeout outlives the step deadline.
    pub started: Instant,
}

/// A downstream call: the message and its metadata. Clones share the metadata, so
/// attempts counted by a retry are seen by the caller.
#[derive(Debug)]
pub struct Call<M> {
    pub message: M,
    pub meta: Arc<CallMeta>,
}

impl<M: Clone> Clone for Call<M> {
    fn clone(&self) -> Self {
        Self {
            message: self.message.clone(),
            meta: self.meta.clone(),
        }
    }
}

impl<M> Call<M> {
    pub fn new(message: M, key: Option<IdempotencyKey>, fault: &str, traceparent: &str) -> Self {
        Self {
            message,
            meta: Arc::new(CallMeta {
                key,
                fault: fault.to_owned(),
                traceparent: traceparent.to_owned(),
                attempts: AtomicU32::new(0),
                started: Instant::now(),
            }),
        }
    }

    pub fn attempts(&self) -> u32 {
        self.meta.attempts.load(Ordering::Relaxed)
    }
}

/// Which kind of call a stack makes: each kind counts against its own breaker and retry
/// budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The saga's forward steps (and the pricing read).
    Forward,
    /// Compensations: retried until they succeed, so kept apart from forward traffic.
    Compensation,
}

impl Lane {
    pub fn code(self) -> &'static str {
        match self {
            Lane::Forward => "forward",
            Lane::Compensation => "compensation",
        }
    }
}
