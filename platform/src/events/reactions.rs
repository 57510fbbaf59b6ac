//! What a domain service writes of its part in the choreography: for each event it
//! consumes, the work and the one follow-up event that announces the result. The rest (the
//! inbox row, the follow-up's envelope and outbox row in the same transaction, refusing an
//! event the service has no reaction to) is the same in every service, and lives here.

use std::future::Future;

use shop_proto::events::v1::envelope::Payload;
use sqlx::PgConnection;

use super::{Event, Handler, HandlerError, Participant, outbox, roles::Role};

/// A service's reactions: the follow-up an event leads to (`None` when nothing changed
/// that others must hear of), written by the caller in the same transaction.
pub trait Reactions: Send + Sync + 'static {
    fn react(
        &self,
        tx: &mut PgConnection,
        event: &Event,
    ) -> impl Future<Output = Result<Option<Payload>, HandlerError>> + Send;
}

/// The [`Handler`] of a service's reactions: runs them, then emits the follow-up as
/// `producer`, caused by the event.
struct Reacting<R> {
    producer: &'static str,
    reactions: R,
}

impl<R: Reactions> Handler for Reacting<R> {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandlerError> {
        if let Some(payload) = self.reactions.react(tx, event).await? {
            outbox::emit(tx, self.producer, event, payload).await?;
        }
        Ok(())
    }
}

impl Participant {
    /// A domain service's part: the durable consumer of its `role` (what the broker lets it
    /// read is made from the same role) and its `reactions`, whose follow-ups are emitted as
    /// `producer` (what `ServiceSpec::events` is given).
    pub fn reacting(role: &Role, producer: &'static str, reactions: impl Reactions) -> Self {
        Self::new(
            role.consumer(),
            Reacting {
                producer,
                reactions,
            },
        )
    }
}

impl HandlerError {
    /// An event `service` has no reaction to: its consumer should never have been given it
    /// (the broker filters by subject), so it is parked, named.
    pub fn not_for(service: &str, event: &Event) -> Self {
        Self::Poison(format!("{service} does not react to {}", event.kind()))
    }
}
