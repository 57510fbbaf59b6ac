//! Idempotent event consumers. Each service runs durable pull consumers (explicit ack),
//! one per subject it reacts to. Every message is handled in one database
//! transaction that also writes its event id to the `inbox`: a redelivered event finds
//! its id there and changes nothing, and an event is never half-handled.
//!
//! What a handler's result means:
//! - `Ok`: committed, acknowledged. A business refusal (out of stock, a declined card)
//!   is `Ok` too: the handler wrote the failure event that says so.
//! - [`HandlerError::Transient`] (the database is away, a conflict): rolled back and
//!   redelivered after a backoff that grows with each delivery (100 ms doubling to 30 s,
//!   so the default 20 deliveries span about six minutes: a database restart or a
//!   failover delays events, it does not park them).
//! - [`HandlerError::Poison`] (the event makes no sense here), an unreadable message, an
//!   event of a schema major the consumer does not know ([`ConsumerSpec::check_version`],
//!   checked before the handler runs), or a transient error on the [`ConsumerSpec::max_deliveries`]th delivery: parked, that
//!   is, a `dead_letters` row with the reason, `events_parked_total`, an error log, and
//!   the message terminated (never redelivered by the broker). `EventAdminService`
//!   lists them, and an operator retries (through [`handle_in`], the same path) or
//!   discards each.

use std::{future::Future, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use shop_proto::events::v1::envelope::Payload;
use sqlx::PgConnection;

use super::{Event, EventKind};
use crate::ApiError;

/// Reacts to one event, in the transaction that records it as handled. Emit follow-up
/// events with [`super::outbox::enqueue`] on the same connection.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        tx: &mut PgConnection,
        event: &Event,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Why an event was not handled.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth another delivery: nothing was committed.
    #[error("transient: {0}")]
    Transient(#[source] anyhow::Error),
    /// The event cannot be handled, now or later: park it.
    #[error("poison: {0}")]
    Poison(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        Self::Transient(error.into())
    }
}

impl From<ApiError> for HandlerError {
    /// A refusal of the shared domain code is the event's fault; the rest may pass.
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::InvalidArgument(_)
            | ApiError::NotFound { .. }
            | ApiError::FailedPrecondition { .. }
            | ApiError::KeyReused { .. }
            | ApiError::PermissionDenied(_) => Self::Poison(error.to_string()),
            ApiError::DependencyUnavailable(_)
            | ApiError::Unavailable(_)
            | ApiError::Internal(_) => Self::Transient(error.into()),
        }
    }
}

impl HandlerError {
    /// What a refusal of the shared domain code means for `event`: poison, named with the
    /// event's type (the field paths are the checkout's), or an outage to redeliver.
    pub fn of(event: &Event, error: ApiError) -> Self {
        match Self::from(error) {
            Self::Poison(reason) => Self::Poison(format!("{}: {reason}", event.kind())),
            transient => transient,
        }
    }
}

/// A [`Handler`] behind a pointer. The consumer and the operator's retry of a dead
/// letter ([`super::admin`]) share one, so a retried event is handled by the very code
/// its consumer runs.
pub trait DynHandler: Send + Sync + 'static {
    fn handle_boxed<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

impl<H: Handler> DynHandler for H {
    fn handle_boxed<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.handle(tx, event))
    }
}

/// A binary's part in the choreography as a consumer: its durable consumer and the
/// handler behind it.
#[derive(Clone)]
pub struct Participant {
    pub consumer: ConsumerSpec,
    pub handler: Arc<dyn DynHandler>,
}

impl Participant {
    pub fn new(consumer: ConsumerSpec, handler: impl Handler) -> Self {
        Self {
            consumer,
            handler: Arc::new(handler),
        }
    }
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant")
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

/// One durable consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The service's consumer name (each subject's durable consumer is named after it),
    /// also the `consumer` of its inbox and dead-letter rows.
    pub durable: &'static str,
    /// The subjects it reacts to, such as `shop.events.order.OrderPlaced`.
    pub subjects: Vec<String>,
    /// The delivery on which a still-failing message is parked.
    pub max_deliveries: i64,
    /// Messages handled at once across all its subjects, each in its own transaction:
    /// keep it below the database pool's size, or handlers wait on connections.
    pub concurrency: usize,
    /// The highest schema major of each event type its handler knows; it knows every
    /// major up to that one, since events of older majors stay in the stream and in
    /// outboxes long after a producer moves on. An event of a newer major is parked
    /// unhandled. A plain function of the payload, so that it is exhaustive over the
    /// types like [`super::schema::written`], which it defaults to.
    pub known_major: fn(&Payload) -> u32,
}

impl ConsumerSpec {
    /// The consumer of service `durable` over the events `(producer, type)` it reacts to
    /// (`type` may be `>` for all of a producer's), with the default delivery limit and a
    /// handler budget of 8, below the default database pool of 10.
    pub fn of(durable: &'static str, events: &[(&str, EventKind)]) -> Self {
        Self {
            durable,
            subjects: events
                .iter()
                .map(|(producer, kind)| super::envelope::subject(producer, kind))
                .collect(),
            max_deliveries: MAX_DELIVERIES,
            concurrency: 8,
            known_major: super::schema::known_by_this_build,
        }
    }

    /// Whether this consumer may act on `event`: it must know the event's major. Any
    /// minor of a known major is read (a minor only adds fields). Else the reason, for
    /// the dead letter: it names the version, the consumer and what it knows, so an
    /// operator sees the rollout went in the wrong order and retries the letter once a
    /// consumer that knows the major runs.
    pub fn check_version(&self, event: &Event) -> Result<(), String> {
        let known = (self.known_major)(&event.payload);
        if event.version.major > known {
            return Err(format!(
                "{} is of schema version {}, a major this consumer ({}) does not know (it \
                 knows majors 1 to {known}): not acted on; retry it once a consumer that \
                 knows major {} is deployed",
                event.kind(),
                event.version,
                self.durable,
                event.version.major
            ));
        }
        Ok(())
    }
}

/// How long a message waits before its next delivery after the `n`th failed: 100 ms,
/// doubling, at most 30 s.
pub fn backoff(deliveries: i64) -> Duration {
    let exponent = u32::try_from(deliveries.clamp(1, 10) - 1).unwrap_or(0);
    Duration::from_millis(100 * 2u64.pow(exponent)).min(Duration::from_secs(30))
}

/// The delivery on which a message that still fails transiently is parked by default:
/// with [`backoff`], about six minutes after its first delivery.
pub const MAX_DELIVERIES: i64 = 20;

/// The durable name of `spec`'s consumer of `subject`: `order-svc-payment-PaymentDeclined`
/// for `shop.events.payment.PaymentDeclined` (durable names allow no `.`, `*` or `>`).
pub fn durable_name(service: &str, subject: &str) -> String {
    let tail = subject
        .strip_prefix("shop.events.")
        .unwrap_or(subject)
        .replace('.', "-")
        .replace('>', "all")
        .replace('*', "any");
    format!("{service}-{tail}")
}

mod delivery;
mod pull;

pub use delivery::{Handled, Inadmissible, admit, handle_in};
pub use pull::consume;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_subject_gets_a_durable_name_the_broker_accepts() {
        assert_eq!(
            durable_name("order-svc", "shop.events.payment.PaymentDeclined"),
            "order-svc-payment-PaymentDeclined"
        );
        assert_eq!(
            durable_name("order-svc", "shop.events.order.>"),
            "order-svc-order-all"
        );
    }

    #[test]
    fn backoff_doubles_from_100ms_to_a_ceiling() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(50), Duration::from_secs(30));
        let before_parking: Duration = (1..MAX_DELIVERIES).map(backoff).sum();
        assert!(
            before_parking > Duration::from_secs(300),
            "a short outage must not park events: {before_parking:?}"
        );
    }

    #[test]
    fn a_consumer_acts_on_every_minor_of_the_majors_it_knows_and_on_no_other_major() {
        let spec = ConsumerSpec::of("payment-svc", &[("order", "OrderPlaced")]);
        let mut event = Event::new(
            "order",
            "c-1",
            None,
            Payload::OrderPlaced(Default::default()),
        );
        for (major, minor) in [(1, 0), (1, 7)] {
            event.version = crate::events::schema::SchemaVersion { major, minor };
            assert_eq!(spec.check_version(&event), Ok(()), "{major}.{minor}");
        }
        event.version.major = 2;
        let reason = spec.check_version(&event).expect_err("major 2 is unknown");
        assert!(
            reason.contains("OrderPlaced is of schema version 2.7"),
            "{reason}"
        );
        assert!(reason.contains("payment-svc"), "{reason}");
    }

    #[test]
    fn refusals_of_the_domain_park_and_outages_retry() {
        let refused = HandlerError::from(ApiError::precondition(
            crate::reason::Reason::OutOfStock,
            "none left",
        ));
        assert!(matches!(refused, HandlerError::Poison(_)));
        let away = HandlerError::from(ApiError::Unavailable(sqlx::Error::PoolTimedOut));
        assert!(matches!(away, HandlerError::Transient(_)));
    }
}
