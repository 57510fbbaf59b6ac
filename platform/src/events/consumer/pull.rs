//! The pull loop of each subject's durable consumer: fetch, hold the message while its
//! handler runs (telling the broker it is still at work), acknowledge, back off or park.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{
    self,
    consumer::{
        AckPolicy,
        pull::{self, MessagesErrorKind},
    },
    message::AckKind,
};
use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::{
    ConsumerSpec, DynHandler, HandlerError, Participant, backoff,
    delivery::{Handled, admit, handle_in},
    durable_name,
};
use crate::events::Event;

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

/// Consumes until the task is dropped, reconnecting after any broker trouble. Each
/// subject gets a durable consumer of its own (`<durable>-<producer>-<type>`): NATS
/// before 2.10 filters a consumer on one subject only, and per-subject consumers let the
/// broker filter on every version. A broker that lost its store is repaired here: the
/// stream (with `stream`'s copies and bounds) and the durable consumers are created again.
pub async fn consume(
    pool: PgPool,
    js: jetstream::Context,
    stream: crate::events::StreamLimits,
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

async fn consume_once(
    pool: &PgPool,
    js: &jetstream::Context,
    stream: crate::events::StreamLimits,
    spec: &ConsumerSpec,
    subject: &str,
    handler: &Arc<dyn DynHandler>,
    permits: &Arc<Semaphore>,
) -> anyhow::Result<()> {
    let (stream, _) = crate::events::broker::find_or_recreate(js, stream).await?;
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
    let stored = sqlx::query!(
        "INSERT INTO dead_letters (event_id, subject, consumer, deliveries, reason, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
        event_id,
        message.subject.as_str(),
        spec.durable,
        deliveries,
        reason,
        message.payload.as_ref(),
    )
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
