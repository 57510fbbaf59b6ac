//! What every delivery goes through, from the broker or from an operator's retry of a dead
//! letter: the admission checks, then the handler and the inbox row in one transaction.

use bytes::Bytes;
use sqlx::PgConnection;

use super::{ConsumerSpec, DynHandler, HandlerError};
use crate::events::Event;

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
    let fresh = sqlx::query!(
        "INSERT INTO inbox (event_id, consumer) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        event.id,
        consumer,
    )
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
