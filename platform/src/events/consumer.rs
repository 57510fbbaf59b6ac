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

use async_nats::jetstream::{
    self,
    consumer::{
        AckPolicy,
        pull::{self, MessagesErrorKind},
    },
    message::AckKind,
};
use bytes::Bytes;
use futures::{StreamExt, future::BoxFuture};
use shop_proto::events::v1::envelope::Payload;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Semaphore;
use tracing::Instrument;

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

/// How often an idle pull subscription hears from the broker, and how long each pull
/// request lasts: shorter than the library's (15 s and 30 s), so that a subscription
/// whose consumer is gone (the broker lost its store) is found out within seconds.
const PULL_HEARTBEAT: Duration = Duration::from_secs(2);
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// How long the broker waits for a delivered message's acknowledgement before it
/// delivers it again: what a consumer that died mid-handling costs its events. Short,
/// because a handler still working says so every [`PROGRESS_EVERY`] ([`with_progress`]).
const ACK_WAIT: Duration = Duration::from_secs(5);
/// How often a handler still running tells the broker to keep waiting for it.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Runs `work` on `message`, telling the broker every [`PROGRESS_EVERY`] that it is
/// still being handled (`+WPI`), so a slow handler is not redelivered to another
/// consumer while it works, and a dead one's messages come back within [`ACK_WAIT`].
async fn with_progress<T>(
    message: &jetstream::Message,
    work: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = ticks.tick() => {
                if let Err(error) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(%error, "could not report progress");
                }
            }
        }
    }
}

/// Idle heartbeats missed in a row after which a pull subscription is taken for dead and
/// made again (the broker restarted; made again, the durable is found or created).
const MISSED_HEARTBEATS_BEFORE_AGAIN: u32 = 3;

/// The delivery on which a message that still fails transiently is parked by default:
/// with [`backoff`], about six minutes after its first delivery.
pub const MAX_DELIVERIES: i64 = 20;

/// Consumes until the task is dropped, reconnecting after any broker trouble. Each
/// subject gets a durable consumer of its own (`<durable>-<producer>-<type>`): NATS
/// before 2.10 filters a consumer on one subject only, and per-subject consumers let the
/// broker filter on every version. A broker that lost its store is repaired here: the
/// stream (with `stream`'s copies and bounds) and the durable consumers are created again.
pub async fn consume(
    pool: PgPool,
    js: jetstream::Context,
    stream: super::StreamLimits,
    participant: Participant,
) {
    let Participant {
        consumer: spec,
        handler,
    } = participant;
    // One budget for every subject, so the service never runs more handlers (and holds
    // more connections) than `concurrency`.
    let permits = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let loops = spec.subjects.iter().map(|subject| {
        let (pool, js, spec, handler, permits) = (&pool, &js, &spec, &handler, &permits);
        async move {
            loop {
                if let Err(error) =
                    consume_once(pool, js, stream, spec, subject, handler, permits).await
                {
                    tracing::warn!(%error, consumer = spec.durable, subject, "consumer stopped; starting again");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    futures::future::join_all(loops).await;
}

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

async fn consume_once(
    pool: &PgPool,
    js: &jetstream::Context,
    stream: super::StreamLimits,
    spec: &ConsumerSpec,
    subject: &str,
    handler: &Arc<dyn DynHandler>,
    permits: &Arc<Semaphore>,
) -> anyhow::Result<()> {
    let (stream, _) = super::broker::find_or_recreate(js, stream).await?;
    let durable = durable_name(spec.durable, subject);
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.clone()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            // Unlimited on the server: this side parks, so nothing is dropped unseen.
            max_deliver: -1,
            max_ack_pending: 1024,
            filter_subject: subject.to_owned(),
            ..Default::default()
        })
        .await?;
    let messages = consumer
        .stream()
        .heartbeat(PULL_HEARTBEAT)
        .expires(PULL_EXPIRES)
        .messages()
        .await?;
    let lag = async {
        loop {
            if let Ok(info) = consumer.info().await {
                let pending = info.num_pending as f64;
                metrics::gauge!("consumer_lag", "consumer" => durable.clone()).set(pending);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    };
    // Pulls end when the consumer is gone (the broker lost its store, or someone deleted
    // it; the broker then answers a pull "consumer not found", a failed pull) or the
    // subscription went quiet: the loop in `consume` then finds or creates it again.
    let mut missed_heartbeats = 0_u32;
    let messages = messages.take_while(move |message| {
        let gone = match message {
            Err(error) => match error.kind() {
                MessagesErrorKind::ConsumerDeleted
                | MessagesErrorKind::NoResponders
                | MessagesErrorKind::Pull => true,
                MessagesErrorKind::MissingHeartbeat => {
                    missed_heartbeats += 1;
                    missed_heartbeats >= MISSED_HEARTBEATS_BEFORE_AGAIN
                }
                _ => false,
            },
            Ok(_) => {
                missed_heartbeats = 0;
                false
            }
        };
        if gone {
            tracing::warn!(
                subject,
                "consumer lost its pull subscription; creating it again"
            );
        }
        std::future::ready(!gone)
    });
    let handle_all = messages.for_each_concurrent(spec.concurrency, |message| async move {
        match message {
            Ok(message) => {
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                process(pool, spec, handler.as_ref(), message).await;
            }
            Err(error) => tracing::warn!(%error, consumer = spec.durable, "pull failed"),
        }
    });
    tokio::select! {
        () = lag => {}
        () = handle_all => {}
    }
    Ok(())
}

async fn process(
    pool: &PgPool,
    spec: &ConsumerSpec,
    handler: &dyn DynHandler,
    message: jetstream::Message,
) {
    let deliveries = message.info().map_or(1, |info| info.delivered);
    if deliveries > 1 {
        metrics::counter!("events_redelivered_total", "consumer" => spec.durable).increment(1);
    }
    let event = match admit(spec, message.subject.as_str(), &message.payload) {
        Ok(event) => event,
        Err(refused) => {
            let id = refused.event_id();
            park(pool, spec, &message, &id, deliveries, &refused.to_string()).await;
            return;
        }
    };
    let span = tracing::info_span!(
        "event",
        consumer = spec.durable,
        kind = event.kind(),
        schema_version = %event.version,
        event_id = %event.id,
        checkout_id = %event.correlation_id,
        deliveries,
    );
    crate::telemetry::adopt_traceparent(&span, &event.envelope.traceparent);
    async {
        match with_progress(&message, handle(pool, handler, spec, &event)).await {
            Ok(()) => settle(&message, AckKind::Ack).await,
            Err(HandlerError::Transient(error)) if deliveries < spec.max_deliveries => {
                tracing::warn!(error = %format!("{error:#}"), "event handling failed; redelivering");
                settle(&message, AckKind::Nak(Some(backoff(deliveries)))).await;
            }
            Err(error) => {
                let id = event.id.to_string();
                park(pool, spec, &message, &id, deliveries, &error.to_string()).await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// Why a message is no event this consumer may handle, whatever its handler would say.
#[derive(Debug, thiserror::Error)]
pub enum Inadmissible {
    /// No event could be read from it.
    #[error("{0}")]
    Unreadable(String),
    /// An event, from a producer that does not own its type or of a schema major this
    /// consumer does not know.
    #[error("{reason}")]
    Refused { event: Box<Event>, reason: String },
}

impl Inadmissible {
    /// The event's id, empty when there is none.
    pub fn event_id(&self) -> String {
        match self {
            Self::Unreadable(_) => String::new(),
            Self::Refused { event, .. } => event.id.to_string(),
        }
    }
}

/// The checks a message passes before its handler sees it, the same for a delivery and
/// for an operator's retry of a dead letter: it decodes, its producer owns its type
/// (`subject` is where it was published), and its schema major is one `spec` knows.
pub fn admit(spec: &ConsumerSpec, subject: &str, payload: &Bytes) -> Result<Event, Inadmissible> {
    let event =
        Event::decode(payload).map_err(|error| Inadmissible::Unreadable(error.to_string()))?;
    match event
        .check_origin(subject)
        .and_then(|()| spec.check_version(&event))
    {
        Ok(()) => Ok(event),
        Err(reason) => Err(Inadmissible::Refused {
            event: Box::new(event),
            reason,
        }),
    }
}

/// Handles `event` once: its inbox row and its effects commit together, or neither.
async fn handle(
    pool: &PgPool,
    handler: &dyn DynHandler,
    spec: &ConsumerSpec,
    event: &Event,
) -> Result<(), HandlerError> {
    let mut tx = pool.begin().await?;
    if handle_in(&mut tx, handler, spec.durable, event).await? == Handled::Duplicate {
        tracing::debug!("event already handled; acknowledging the duplicate");
        return Ok(());
    }
    tx.commit().await?;
    Ok(())
}

/// Whether [`handle_in`] acted on an event or found it handled before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The handler ran: its effects and the inbox row wait for the caller's commit.
    Now,
    /// The inbox already holds the event: nothing was done.
    Duplicate,
}

/// Records `event` in `consumer`'s inbox and runs `handler` on it, in the caller's
/// transaction; an event the inbox already holds is not handled again.
pub async fn handle_in(
    tx: &mut PgConnection,
    handler: &dyn DynHandler,
    consumer: &str,
    event: &Event,
) -> Result<Handled, HandlerError> {
    let fresh = sqlx::query(
        "INSERT INTO inbox (event_id, consumer) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(event.id)
    .bind(consumer)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        return Ok(Handled::Duplicate);
    }
    handler.handle_boxed(tx, event).await?;
    Ok(Handled::Now)
}

/// Parks a message for a person: a dead-letter row, a metric, an error log, and no more
/// deliveries. If even the row cannot be written, the message is left to be redelivered.
async fn park(
    pool: &PgPool,
    spec: &ConsumerSpec,
    message: &jetstream::Message,
    event_id: &str,
    deliveries: i64,
    reason: &str,
) {
    let stored = sqlx::query(
        "INSERT INTO dead_letters (event_id, subject, consumer, deliveries, reason, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event_id)
    .bind(message.subject.as_str())
    .bind(spec.durable)
    .bind(deliveries)
    .bind(reason)
    .bind(message.payload.as_ref())
    .execute(pool)
    .await;
    if let Err(error) = stored {
        tracing::warn!(%error, "cannot park the message; it will be redelivered");
        settle(message, AckKind::Nak(Some(backoff(deliveries)))).await;
        return;
    }
    tracing::error!(
        consumer = spec.durable,
        subject = message.subject.as_str(),
        event_id,
        deliveries,
        reason,
        "event parked after it kept failing; see ListDeadLetters"
    );
    metrics::counter!("events_parked_total", "consumer" => spec.durable).increment(1);
    settle(message, AckKind::Term).await;
}

async fn settle(message: &jetstream::Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        // The broker redelivers after ack_wait; the inbox absorbs the repeat.
        tracing::warn!(%error, "could not settle the message");
    }
}

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
