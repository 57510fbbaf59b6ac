//! The transactional outbox. A service writes its events with [`enqueue`] in the same
//! transaction as the state change they announce, so an event exists exactly when its
//! change does. The [`relay`] then publishes committed events to JetStream with
//! `Nats-Msg-Id` = event id, waits for the stream's acknowledgement, and marks them sent.
//!
//! The relay wakes on `LISTEN outbox` (every enqueue notifies at commit), so an event
//! leaves within milliseconds, and also polls now and then in case a notification was
//! lost with a connection. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so two
//! replicas of a service relay disjoint batches; a relay that dies between publishing and
//! marking leaves its rows to be published again, and the stream's duplicate window
//! stores them once. Sent rows are pruned after [`KEEP_SENT`].
//!
//! An event the broker refuses (this service's certificate may not publish its subject:
//! the broker's authorization and the service disagree) stays in the outbox. The relay
//! says so at ERROR, naming the subject, counts it in `outbox_publish_refused_total`, and
//! tries again on a slower schedule than after an outage ([`retry_wait`]), since only a
//! person can mend it; the events it did publish are marked sent meanwhile.

use std::{collections::BTreeMap, time::Duration};

use async_nats::{
    HeaderMap,
    jetstream::{self, context::PublishErrorKind},
};
use sqlx::{PgConnection, PgPool, postgres::PgListener};
use uuid::Uuid;

use super::{
    Event,
    broker::{self, Connected, Incarnation},
    refusals::Refusals,
};

/// The channel the outbox notifies on.
const CHANNEL: &str = "outbox";
/// How many events one relay round publishes at most.
const BATCH: i64 = 256;
/// The relay polls this often even without a notification.
const POLL: Duration = Duration::from_secs(1);
/// How long sent rows stay (for looking into what left, and when).
pub const KEEP_SENT: Duration = Duration::from_secs(600);
/// How often the relay prunes sent rows and measures its lag: housekeeping, kept off the
/// path of every event (each is a statement of its own).
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// Writes `event` in the caller's transaction; it is published once that commits.
pub async fn enqueue(conn: &mut PgConnection, event: &Event) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "WITH queued AS (
             INSERT INTO outbox (event_id, subject, envelope) VALUES ($1, $2, $3))
         SELECT pg_notify('outbox', '')",
        event.id,
        event.subject(),
        event.encode(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes `producer`'s follow-up of `cause` in the handler's transaction.
pub async fn emit(
    conn: &mut PgConnection,
    producer: &str,
    cause: &Event,
    payload: shop_proto::events::v1::envelope::Payload,
) -> Result<(), sqlx::Error> {
    enqueue(conn, &cause.follow_up(producer, payload)).await
}

/// Why a relay round failed; the round is retried, nothing is lost.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("publishing to JetStream: {0}")]
    Publish(#[from] async_nats::jetstream::context::PublishError),
    /// The broker refused these subjects (how many events of each): the events stay.
    #[error("the broker refused to take events on {0:?}")]
    Refused(BTreeMap<String, u64>),
}

/// How long the relay waits after its `failures`th failed round in a row: 200 ms
/// doubling to 6.4 s after an outage, which ends by itself; 2 s doubling to a minute
/// after a refusal, which does not, so that a misconfigured broker costs a few log lines
/// a minute rather than a busy loop.
pub fn retry_wait(failures: u32, refused: bool) -> Duration {
    if refused {
        Duration::from_secs(2u64.pow(failures.clamp(1, 6))).min(Duration::from_secs(60))
    } else {
        Duration::from_millis(100 * 2u64.pow(failures.min(6)))
    }
}

/// Publishes committed events until the task is dropped, through `connected` (whose
/// refusals it reports, see [`super::broker::connection`]). When the stream turns out
/// to be a new one (the broker lost its store), it creates it if need be, with
/// `stream`'s copies and bounds, and publishes again every sent row the outbox still keeps.
pub async fn relay(
    pool: PgPool,
    connected: Connected,
    producer: &'static str,
    stream: super::StreamLimits,
) {
    let Connected {
        js,
        stream: mut known,
        refusals,
    } = connected;
    let mut listener = None;
    let mut failures = 0u32;
    let mut housekeeping = tokio::time::Instant::now();
    loop {
        if listener.is_none() {
            listener = listen(&pool).await;
        }
        let round = publish_all(&pool, &js, &refusals).await;
        // Measured whatever the round did: the lag matters most while rounds fail.
        let no_stream = matches!(
            &round,
            Err(RelayError::Publish(error)) if error.kind() == PublishErrorKind::StreamNotFound
        );
        if no_stream || housekeeping.elapsed() >= HOUSEKEEPING {
            follow_stream(&pool, &js, stream, producer, &mut known).await;
        }
        if housekeeping.elapsed() >= HOUSEKEEPING {
            housekeeping = tokio::time::Instant::now();
            prune(&pool).await;
            record_lag(&pool, producer).await;
        }
        match round {
            Ok(()) => failures = 0,
            Err(error) => {
                failures += 1;
                let refused = matches!(error, RelayError::Refused(_));
                match &error {
                    RelayError::Refused(subjects) => report_refused(producer, subjects),
                    _ => tracing::warn!(%error, producer, "outbox relay round failed; retrying"),
                }
                tokio::time::sleep(retry_wait(failures, refused)).await;
                continue;
            }
        }
        match listener.as_mut() {
            Some(l) => {
                if let Ok(Err(error)) = tokio::time::timeout(POLL, l.recv()).await {
                    tracing::warn!(%error, "outbox notifications lost; listening again");
                    listener = None;
                } else {
                    // One round publishes everything committed so far: the notifications
                    // already waiting would only wake empty rounds.
                    while l.next_buffered().is_some() {}
                }
            }
            None => tokio::time::sleep(POLL).await,
        }
    }
}

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen(CHANNEL).await.ok()?;
    Some(listener)
}

/// Publishes batches until the outbox has nothing unsent.
async fn publish_all(
    pool: &PgPool,
    js: &jetstream::Context,
    refusals: &Refusals,
) -> Result<(), RelayError> {
    while publish_batch(pool, js, refusals).await? == BATCH {}
    Ok(())
}

/// Says loudly that the broker refused events: an error naming each subject, and
/// `outbox_publish_refused_total{producer,subject}` counting the refused publishes.
fn report_refused(producer: &'static str, subjects: &BTreeMap<String, u64>) {
    for (subject, events) in subjects {
        metrics::counter!(
            "outbox_publish_refused_total",
            "producer" => producer,
            "subject" => subject.clone()
        )
        .increment(*events);
        tracing::error!(
            producer,
            subject = subject.as_str(),
            events,
            "the broker refused to publish this service's events: its certificate may not \
             publish this subject (see docs/OPERATIONS.md#outboxpublishrefused); they stay \
             in the outbox and are tried again"
        );
    }
}

/// Checks that the stream is still the one `known`; when it is gone it is created again,
/// and when it is a new one every sent row still kept is published again (the lost
/// store may have held some of them unconsumed; consumers' inboxes absorb the others).
async fn follow_stream(
    pool: &PgPool,
    js: &jetstream::Context,
    stream: super::StreamLimits,
    producer: &'static str,
    known: &mut Incarnation,
) {
    let now = match broker::incarnation(js).await {
        Ok(Some(now)) => now,
        Ok(None) => match broker::find_or_recreate(js, stream).await {
            Ok((_, now)) => now,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot create the stream again; will try again");
                return;
            }
        },
        // The broker is away: the round's own errors say so.
        Err(_) => return,
    };
    if now == *known {
        return;
    }
    match sqlx::query!("UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL")
        .execute(pool)
        .await
    {
        Ok(done) => {
            let rows = done.rows_affected();
            tracing::warn!(
                producer,
                rows,
                "the stream is a new one (the broker lost its store): publishing again \
                 what the outbox keeps"
            );
            metrics::counter!("outbox_republished_total", "producer" => producer).increment(rows);
            *known = now;
        }
        Err(error) => tracing::warn!(%error, "cannot mark kept events for publishing again"),
    }
}

/// Deletes rows sent more than [`KEEP_SENT`] ago.
async fn prune(pool: &PgPool) {
    let pruned = sqlx::query!(
        "DELETE FROM outbox WHERE sent_at < now() - $1::interval",
        crate::db::interval(KEEP_SENT),
    )
    .execute(pool)
    .await;
    if let Err(error) = pruned {
        tracing::warn!(%error, "cannot prune the outbox; will try again");
    }
}

/// One batch: claim, publish every event (acks awaited together), mark the acknowledged
/// ones sent, commit. Returns how many rows it claimed, or why some were not published
/// (those stay unsent; the others are marked sent all the same).
async fn publish_batch(
    pool: &PgPool,
    js: &jetstream::Context,
    refusals: &Refusals,
) -> Result<i64, RelayError> {
    let mut tx = pool.begin().await?;
    let rows: Vec<(Uuid, String, Vec<u8>)> = sqlx::query!(
        "SELECT event_id, subject, envelope FROM outbox
          WHERE sent_at IS NULL ORDER BY created_at, event_id LIMIT $1
            FOR UPDATE SKIP LOCKED",
        BATCH,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| (row.event_id, row.subject, row.envelope))
    .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let mut acks = Vec::with_capacity(rows.len());
    for (event_id, subject, envelope) in &rows {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id.to_string().as_str());
        acks.push(
            js.publish_with_headers(subject.clone(), headers, envelope.clone().into())
                .await?,
        );
    }
    // Awaited together: a refused event's ack never comes, and awaiting each in turn
    // would wait out the ack timeout once per refused event.
    let outcomes = futures::future::join_all(acks.into_iter().map(IntoFuture::into_future)).await;
    let mut sent: Vec<Uuid> = Vec::with_capacity(rows.len());
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed = None;
    for ((event_id, subject, _), outcome) in rows.iter().zip(outcomes) {
        match outcome {
            Ok(_) => sent.push(*event_id),
            // The broker's refusal arrived long before the ack's timeout did.
            Err(_) if refusals.take_publish(subject) => {
                *refused.entry(subject.clone()).or_default() += 1;
            }
            Err(error) => {
                failed.get_or_insert(error);
            }
        }
    }
    sqlx::query!(
        "UPDATE outbox SET sent_at = now() WHERE event_id = ANY($1)",
        &sent,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("outbox_published_total").increment(sent.len() as u64);
    if !refused.is_empty() {
        return Err(RelayError::Refused(refused));
    }
    if let Some(error) = failed {
        return Err(error.into());
    }
    Ok(i64::try_from(rows.len()).unwrap_or(BATCH))
}

/// `outbox_lag_seconds`: the age of the oldest event not yet published.
async fn record_lag(pool: &PgPool, producer: &'static str) {
    let oldest: Result<Option<f64>, _> = sqlx::query_scalar!(
        "SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM outbox
          WHERE sent_at IS NULL",
    )
    .fetch_one(pool)
    .await;
    if let Ok(lag) = oldest {
        metrics::gauge!("outbox_lag_seconds", "producer" => producer).set(lag.unwrap_or(0.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_retried_slowly_and_an_outage_quickly() {
        assert_eq!(retry_wait(1, false), Duration::from_millis(200));
        assert_eq!(retry_wait(20, false), Duration::from_millis(6400));
        assert_eq!(retry_wait(1, true), Duration::from_secs(2));
        assert_eq!(retry_wait(3, true), Duration::from_secs(8));
        assert_eq!(retry_wait(20, true), Duration::from_secs(60));
    }
}
