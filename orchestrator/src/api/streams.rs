//! Caps on open WatchCheckout streams, per caller and in all.
//!
//! A stream outlives its call, so `MAX_IN_FLIGHT` (which counts calls until their answer
//! starts) never sees it: 1,500 streams from one token were once all admitted. Each open
//! stream holds a [`StreamPermit`]; admitting one past either cap answers
//! RESOURCE_EXHAUSTED with a reason that says which cap (closing one of the caller's own
//! streams helps with the first; only waiting helps with the second). The counts are this
//! replica's: with N replicas a caller may hold up to N times the per-caller cap.
//!
//! Metrics: `watch_streams_open` (gauge) and `watch_streams_refused_total{limit}` with
//! `limit` = `caller` or `replica`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use platform::{error::ERROR_DOMAIN, reason::Reason, security::caller::Caller};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// How many streams may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// On this replica, from all callers (`MAX_WATCH_STREAMS`).
    pub total: usize,
    /// On this replica, from one token subject (`MAX_WATCH_STREAMS_PER_CALLER`).
    pub per_caller: usize,
}

/// Whose streams are counted together: a token's subject, customer or operator alike.
/// `--dev-insecure` callers have no identity, so they count only towards the total.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Principal(String);

impl Principal {
    fn of(caller: &Caller) -> Option<Self> {
        match caller {
            Caller::Customer(subject) | Caller::Operator(subject) => Some(Self(subject.clone())),
            Caller::Unchecked => None,
        }
    }
}

/// Why a stream was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "this caller has {limit} WatchCheckout streams open on this replica, its limit \
         (MAX_WATCH_STREAMS_PER_CALLER); close one before opening another"
    )]
    Caller { limit: usize },
    #[error(
        "this replica has {limit} WatchCheckout streams open, its limit (MAX_WATCH_STREAMS); \
         retry later, or read the checkout with GetCheckout"
    )]
    Replica { limit: usize },
}

impl Refused {
    /// The `limit` label of `watch_streams_refused_total`.
    fn label(&self) -> &'static str {
        match self {
            Refused::Caller { .. } => "caller",
            Refused::Replica { .. } => "replica",
        }
    }
}

/// RESOURCE_EXHAUSTED with an `ErrorInfo` whose reason says which cap, so a client can
/// tell "close one of yours" from "wait". (Mapped here, not through `ApiError`: no other
/// handler refuses this way.)
impl From<Refused> for Status {
    fn from(refused: Refused) -> Self {
        let reason = match refused {
            Refused::Caller { .. } => Reason::WatchStreamsPerCallerExhausted,
            Refused::Replica { .. } => Reason::WatchStreamsExhausted,
        };
        Status::with_error_details(
            Code::ResourceExhausted,
            refused.to_string(),
            ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new()),
        )
    }
}

/// The open streams of one replica.
#[derive(Debug)]
pub struct Streams {
    limits: StreamLimits,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Only principals with at least one stream open: the map is bounded by the streams.
    by_caller: HashMap<Principal, usize>,
}

impl Streams {
    pub fn new(limits: StreamLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::default(),
        })
    }

    /// Counts a new stream of `caller`, or says which cap it would break (and counts the
    /// refusal).
    pub fn admit(self: &Arc<Self>, caller: &Caller) -> Result<StreamPermit, Refused> {
        let principal = Principal::of(caller);
        let mut open = self.lock();
        let admitted = self.try_admit(&mut open, principal.as_ref());
        match admitted {
            Ok(()) => {
                metrics::gauge!("watch_streams_open").set(open.total as f64);
                Ok(StreamPermit {
                    streams: self.clone(),
                    principal,
                })
            }
            Err(refused) => {
                metrics::counter!("watch_streams_refused_total", "limit" => refused.label())
                    .increment(1);
                Err(refused)
            }
        }
    }

    fn try_admit(&self, open: &mut Open, principal: Option<&Principal>) -> Result<(), Refused> {
        if let Some(principal) = principal {
            let held = open.by_caller.get(principal).copied().unwrap_or(0);
            if held >= self.limits.per_caller {
                return Err(Refused::Caller {
                    limit: self.limits.per_caller,
                });
            }
        }
        if open.total >= self.limits.total {
            return Err(Refused::Replica {
                limit: self.limits.total,
            });
        }
        open.total += 1;
        if let Some(principal) = principal {
            *open.by_caller.entry(principal.clone()).or_insert(0) += 1;
        }
        Ok(())
    }

    fn release(&self, principal: Option<&Principal>) {
        let mut open = self.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(principal) = principal
            && let Some(held) = open.by_caller.get_mut(principal)
        {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.by_caller.remove(principal);
            }
        }
        metrics::gauge!("watch_streams_open").set(open.total as f64);
    }

    /// Streams open now (for tests and the gauge).
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// The counts stay right even if a holder panicked: every change is one statement.
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One open stream, counted until dropped (when the stream's task ends: the checkout
/// ended, the client went away, or the database failed).
#[derive(Debug)]
pub struct StreamPermit {
    streams: Arc<Streams>,
    principal: Option<Principal>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.streams.release(self.principal.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(total: usize, per_caller: usize) -> Arc<Streams> {
        Streams::new(StreamLimits { total, per_caller })
    }

    #[test]
    fn a_caller_is_refused_past_its_own_cap_while_others_are_not() {
        let streams = streams(10, 2);
        let alice = Caller::Customer("alice".into());
        let held: Vec<_> = (0..2).map(|_| streams.admit(&alice).unwrap()).collect();
        assert_eq!(
            streams.admit(&alice).unwrap_err(),
            Refused::Caller { limit: 2 }
        );
        // The same subject as an operator is the same caller.
        assert_eq!(
            streams
                .admit(&Caller::Operator("alice".into()))
                .unwrap_err(),
            Refused::Caller { limit: 2 }
        );
        let _bob = streams.admit(&Caller::Customer("bob".into())).unwrap();
        assert_eq!(streams.open(), 3);
        drop(held);
        assert_eq!(streams.open(), 1);
        let _again = streams.admit(&alice).unwrap();
    }

    #[test]
    fn every_caller_is_refused_past_the_replicas_cap_until_one_closes() {
        let streams = streams(3, 2);
        let a = streams.admit(&Caller::Customer("a".into())).unwrap();
        let _b = streams.admit(&Caller::Customer("b".into())).unwrap();
        let _c = streams.admit(&Caller::Unchecked).unwrap();
        for caller in [Caller::Customer("d".into()), Caller::Unchecked] {
            assert_eq!(
                streams.admit(&caller).unwrap_err(),
                Refused::Replica { limit: 3 }
            );
        }
        drop(a);
        let _d = streams.admit(&Caller::Customer("d".into())).unwrap();
    }

    #[test]
    fn unchecked_callers_count_only_towards_the_total() {
        let streams = streams(5, 1);
        let held: Vec<_> = (0..5)
            .map(|_| streams.admit(&Caller::Unchecked).unwrap())
            .collect();
        assert_eq!(held.len(), 5);
        assert_eq!(
            streams.admit(&Caller::Unchecked).unwrap_err(),
            Refused::Replica { limit: 5 }
        );
    }

    #[test]
    fn a_refusal_is_resource_exhausted_with_its_reason() {
        let status = Status::from(Refused::Caller { limit: 32 });
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            Reason::of(&status),
            Some(Reason::WatchStreamsPerCallerExhausted)
        );
        assert!(status.message().contains("MAX_WATCH_STREAMS_PER_CALLER"));
        let status = Status::from(Refused::Replica { limit: 1000 });
        assert_eq!(Reason::of(&status), Some(Reason::WatchStreamsExhausted));
    }
}
