//! The tracker: follows every event of choreographed checkouts and writes each one's
//! timeline into the same saga rows an orchestrated checkout has, so GetCheckout,
//! ListCheckouts, WatchCheckout and a waiting PlaceOrder work the same in both modes.
//! It only listens: it never commands a service.
//!
//! Each event is applied in its consumer's transaction (with its inbox row), the saga row
//! locked, through `saga::choreography` (which decides what the event means, never moves
//! the timeline back, and refuses an event that contradicts it: parked, not applied), and
//! announced with `NOTIFY saga_changed` so waiters on any replica wake at commit.

use platform::events::{ConsumerSpec, Event, Handler, HandlerError, Participant};
use sqlx::PgConnection;

use crate::{
    feed::Feed,
    ids::SagaId,
    saga::{
        CoordinationMode, Durability, FailureReason, StepState,
        choreography::{self, Recorded},
        rules::SagaState,
    },
    store,
};

/// The subjects the tracker follows: every service's events, from the front door's role
/// in `platform::events::roles`, which the broker's authorization is made from too.
pub fn consumer() -> ConsumerSpec {
    platform::events::roles::ORCHESTRATOR.consumer()
}

/// The tracker as the choreography's consumer: its durable consumer and handler, shared
/// by the consumer task and `EventAdminService`'s retry of a dead letter.
pub fn participant() -> Participant {
    Participant::new(consumer(), Tracker)
}

/// The channel saga changes are announced on (payload: the saga id).
pub const CHANGED: &str = "saga_changed";

/// Writes choreographed checkouts' timelines from their events.
#[derive(Debug, Clone, Default)]
pub struct Tracker;

impl Handler for Tracker {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandlerError> {
        let transition = choreography::on_event(&event.payload)
            .map_err(|e| HandlerError::Poison(e.to_string()))?;
        let Some(transition) = transition else {
            return Ok(());
        };
        let saga_id = uuid::Uuid::try_parse(&event.correlation_id)
            .map(SagaId::from)
            .map_err(|_| HandlerError::Poison("correlation_id is not a checkout id".into()))?;
        let (row, steps) = store::lock(tx, saga_id)
            .await?
            .ok_or_else(|| HandlerError::Poison(format!("no checkout {saga_id}")))?;
        if row.mode != CoordinationMode::Choreographed {
            return Err(HandlerError::Poison(format!(
                "checkout {saga_id} is orchestrated; its events are not the tracker's"
            )));
        }
        let state = SagaState {
            status: row.status,
            resume_from: row.resume_from,
            failure_reason: row.failure_reason,
            order_id: row.order_id,
            steps: steps
                .iter()
                .map(|s| StepState {
                    step: s.step,
                    status: s.status,
                    uncertain: s.uncertain,
                })
                .collect(),
        };
        let recorded = Recorded {
            state,
            payment_id: row.payment_id,
            tracking_number: row.tracking_number,
        };
        // A contradiction is parked with its reason, and nothing of the event applied.
        let transition = choreography::merge(&recorded, transition)
            .map_err(|c| HandlerError::Poison(format!("checkout {saga_id}: {c}")))?;
        let state = recorded.state;
        // Always flushed: the event is acknowledged once this commits, and a lost record
        // would never be delivered again to re-derive it. Unfenced: the row is locked.
        store::apply(
            &mut *tx,
            saga_id,
            None,
            Durability::Flushed,
            &transition.saga,
            &transition.steps,
        )
        .await?;
        sqlx::query!("SELECT pg_notify($1, $2)", CHANGED, saga_id.to_string())
            .execute(&mut *tx)
            .await?;
        if let Some(status) = transition.saga.status.filter(|s| s.is_terminal()) {
            tracing::info!(%saga_id, %status, "choreographed checkout ended");
            let reason = state
                .failure_reason
                .or(transition.saga.failure_reason)
                .map_or("", FailureReason::code);
            metrics::counter!("saga_outcomes_total", "status" => status.code(), "reason" => reason, "mode" => "choreographed")
                .increment(1);
        }
        Ok(())
    }
}

/// Wakes this replica's waiters and watchers when any replica's tracker changed a saga:
/// forwards `NOTIFY saga_changed` to the change feed, on one connection per replica.
/// Reconnects after losing the connection, then wakes every watcher once, since
/// notifications sent meanwhile are lost.
pub async fn forward_changes(pool: sqlx::PgPool, feed: std::sync::Arc<Feed>) {
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(CHANGED).await {
                    tracing::warn!(%error, "cannot listen for saga changes");
                } else {
                    feed.wake_all();
                    while let Ok(notification) = listener.recv().await {
                        if let Ok(id) = uuid::Uuid::try_parse(notification.payload()) {
                            feed.changed(SagaId::from(id), None);
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot listen for saga changes"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
