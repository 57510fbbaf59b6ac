//! `shop.events.v1.EventAdminService`: what a service's consumer parked, for a person to
//! look at, and the operator's two ways of settling it: retry (handle the event once
//! more, through the consumer's own handler) or discard (with a reason on record). Every
//! service that consumes events serves it next to its own API; the access table opens it
//! to operators only.
//!
//! A letter is settled once. Its row is locked for the whole retry, and the retry's
//! effects, its inbox row and the settlement commit in one transaction, so two operators
//! retrying the same letter at once handle its event once: the second finds it RETRIED
//! and answers it as it is.

use shop_proto::events::v1::{
    self as pb,
    event_admin_service_server::{EventAdminService, EventAdminServiceServer},
};
use sqlx::{PgConnection, PgPool};

use super::{
    HandlerError, Participant,
    consumer::{Handled, Inadmissible, admit, handle_in},
};
use crate::{
    ApiError,
    error::{Reply, reply},
    page,
    reason::Reason,
    security::{
        Principal,
        principal::{Identity, Peer},
    },
    time::timestamp,
    validate::Violations,
};

/// The longest reason a discard keeps, in characters.
pub const MAX_DISCARD_REASON_CHARS: usize = 500;

/// Serves `EventAdminService` over one service's `dead_letters`, retrying with the
/// handler its consumer runs.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    pool: PgPool,
    participant: Participant,
}

impl DeadLetters {
    pub fn server(pool: PgPool, participant: Participant) -> EventAdminServiceServer<Self> {
        EventAdminServiceServer::new(Self { pool, participant })
    }
}

crate::stored_code! {
    /// Where a letter stands (the `state` column).
    pub(crate) enum State {
        Parked = "parked",
        Retried = "retried",
        Discarded = "discarded",
    }
}

impl State {
    fn wire(self) -> pb::DeadLetterState {
        match self {
            Self::Parked => pb::DeadLetterState::Parked,
            Self::Retried => pb::DeadLetterState::Retried,
            Self::Discarded => pb::DeadLetterState::Discarded,
        }
    }
}

/// A dead letter as stored.
struct Row {
    id: i64,
    event_id: String,
    subject: String,
    consumer: String,
    deliveries: i64,
    reason: String,
    payload: Vec<u8>,
    parked_at: chrono::DateTime<chrono::Utc>,
    state: State,
    settled_at: Option<chrono::DateTime<chrono::Utc>>,
    settled_by: Option<String>,
    settle_note: Option<String>,
}

impl Row {
    fn into_wire(self) -> Result<pb::DeadLetter, ApiError> {
        Ok(pb::DeadLetter {
            state: self.state.wire().into(),
            id: self.id,
            event_id: self.event_id,
            subject: self.subject,
            consumer: self.consumer,
            deliveries: self.deliveries,
            reason: self.reason,
            park_time: Some(timestamp(self.parked_at)),
            payload: self.payload,
            settle_time: self.settled_at.map(timestamp),
            settled_by: self.settled_by.unwrap_or_default(),
            settle_note: self.settle_note.unwrap_or_default(),
        })
    }
}

#[tonic::async_trait]
impl EventAdminService for DeadLetters {
    async fn list_dead_letters(
        &self,
        request: tonic::Request<pb::ListDeadLettersRequest>,
    ) -> Reply<pb::ListDeadLettersResponse> {
        reply(self.list(request.into_inner()).await)
    }

    async fn retry_dead_letter(
        &self,
        request: tonic::Request<pb::RetryDeadLetterRequest>,
    ) -> Reply<pb::RetryDeadLetterResponse> {
        let by = settled_by(&request);
        reply(self.retry(request.into_inner(), &by).await)
    }

    async fn discard_dead_letter(
        &self,
        request: tonic::Request<pb::DiscardDeadLetterRequest>,
    ) -> Reply<pb::DiscardDeadLetterResponse> {
        let by = settled_by(&request);
        reply(self.discard(request.into_inner(), &by).await)
    }
}

/// The metadata in which the orchestrator's relay (`shop.operations.v1.DeadLetterService`)
/// names the operator it acts for, whose bearer token it checked. Believed only from the
/// orchestrator's certificate: from any other caller it is ignored.
pub const ON_BEHALF_OF: &str = "x-on-behalf-of";

/// Who settles a letter, for the record: the principal the caller's certificate names
/// (the access table lets only operators and the orchestrator's relay this far), with
/// the person the relay acts for, or `plaintext` on a stack without TLS, where nobody is
/// proven.
fn settled_by<T>(request: &tonic::Request<T>) -> String {
    match request.extensions().get::<Peer>().map(|peer| peer.identity) {
        Some(Identity::Known(Principal::Orchestrator)) => {
            let relay = Principal::Orchestrator.name();
            match request
                .metadata()
                .get(ON_BEHALF_OF)
                .and_then(|person| person.to_str().ok())
                .filter(|person| !person.is_empty())
            {
                Some(person) => format!("{person} via {relay}"),
                None => relay.to_owned(),
            }
        }
        Some(Identity::Known(principal)) => principal.name().to_owned(),
        Some(Identity::Plaintext) | None => "plaintext".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn letter_id(v: &mut Violations, id: i64) -> i64 {
    if id <= 0 {
        v.add("id", "must be a dead letter's id (positive)");
    }
    id
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound {
        kind: "dead letter",
        id: id.to_string(),
    }
}

impl DeadLetters {
    async fn list(
        &self,
        req: pb::ListDeadLettersRequest,
    ) -> Result<pb::ListDeadLettersResponse, ApiError> {
        let mut v = Violations::default();
        let size = page::page_size(&mut v, "page_size", req.page_size);
        let before = page::decode(&mut v, "page_token", &req.page_token)
            .and_then(|cursor| cursor.parse::<i64>().ok());
        if !req.page_token.is_empty() && before.is_none() && v.is_empty() {
            v.add("page_token", "is not a token returned by this service");
        }
        v.finish(())?;
        let rows = sqlx::query_as!(
            Row,
            "SELECT id, event_id, subject, consumer, deliveries, reason, payload, parked_at,
                    state, settled_at, settled_by, settle_note
               FROM dead_letters WHERE ($1::bigint IS NULL OR id < $1)
              ORDER BY id DESC LIMIT $2",
            before,
            size + 1,
        )
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page::split(rows, size, |row| row.id.to_string());
        Ok(pb::ListDeadLettersResponse {
            dead_letters: rows
                .into_iter()
                .map(Row::into_wire)
                .collect::<Result<_, _>>()?,
            next_page_token,
        })
    }

    async fn retry(
        &self,
        req: pb::RetryDeadLetterRequest,
        by: &str,
    ) -> Result<pb::RetryDeadLetterResponse, ApiError> {
        let mut v = Violations::default();
        let id = letter_id(&mut v, req.id);
        v.finish(())?;
        let mut tx = self.pool.begin().await?;
        let letter = locked(&mut tx, id).await?;
        match letter.state {
            // Handled once already: a second retry changes nothing.
            State::Retried => {
                return Ok(pb::RetryDeadLetterResponse {
                    dead_letter: Some(letter.into_wire()?),
                });
            }
            State::Discarded => {
                return Err(ApiError::precondition(
                    Reason::DeadLetterDiscarded,
                    format!("dead letter {id} was discarded; it stays so"),
                ));
            }
            State::Parked => {}
        }
        let note = self.handle(&mut tx, &letter).await?;
        let settled = settle(&mut tx, id, State::Retried, by, note).await?;
        tx.commit().await?;
        tracing::warn!(
            id,
            event_id = settled.event_id,
            consumer = settled.consumer,
            by,
            note,
            "dead letter retried"
        );
        metrics::counter!("events_dead_letters_settled_total", "consumer" => self.participant.consumer.durable, "settlement" => "retried").increment(1);
        Ok(pb::RetryDeadLetterResponse {
            dead_letter: Some(settled.into_wire()?),
        })
    }

    /// Handles the letter's event in `tx` as its consumer would, after the same checks;
    /// returns the settlement's note.
    async fn handle(&self, tx: &mut PgConnection, letter: &Row) -> Result<&'static str, ApiError> {
        let still_failing =
            |why: String| ApiError::precondition(Reason::DeadLetterStillFailing, why);
        let spec = &self.participant.consumer;
        let consumer = spec.durable;
        if letter.consumer != consumer {
            return Err(still_failing(format!(
                "dead letter {} was parked by consumer {}, which this binary ({consumer}) does not run",
                letter.id, letter.consumer
            )));
        }
        // The delivery's own checks: a letter parked for its major, say, stays parked
        // until this binary knows that major.
        let payload = bytes::Bytes::copy_from_slice(&letter.payload);
        let event = admit(spec, &letter.subject, &payload).map_err(|refused| match refused {
            Inadmissible::Unreadable(error) => ApiError::precondition(
                Reason::DeadLetterUnreadable,
                format!(
                    "dead letter {} holds no readable event ({error}); discard it",
                    letter.id
                ),
            ),
            Inadmissible::Refused { reason, .. } => still_failing(reason),
        })?;
        match handle_in(tx, self.participant.handler.as_ref(), consumer, &event).await {
            Ok(Handled::Now) => Ok("handled"),
            Ok(Handled::Duplicate) => Ok("already handled"),
            Err(HandlerError::Poison(why)) => Err(still_failing(format!(
                "the handler refused the event again: {why}"
            ))),
            Err(HandlerError::Transient(error)) => Err(ApiError::DependencyUnavailable(format!(
                "handling the event ({error:#})"
            ))),
        }
    }

    async fn discard(
        &self,
        req: pb::DiscardDeadLetterRequest,
        by: &str,
    ) -> Result<pb::DiscardDeadLetterResponse, ApiError> {
        let mut v = Violations::default();
        let id = letter_id(&mut v, req.id);
        let why = req.reason.trim();
        if why.is_empty() {
            v.add("reason", "is required: say why the event is not handled");
        } else if why.chars().count() > MAX_DISCARD_REASON_CHARS {
            v.add(
                "reason",
                format!("must be at most {MAX_DISCARD_REASON_CHARS} characters"),
            );
        }
        v.finish(())?;
        let mut tx = self.pool.begin().await?;
        let letter = locked(&mut tx, id).await?;
        let settled = match letter.state {
            State::Discarded => letter,
            State::Retried => {
                return Err(ApiError::precondition(
                    Reason::DeadLetterRetried,
                    format!("dead letter {id} was handled by a retry; discarding cannot undo it"),
                ));
            }
            State::Parked => {
                let settled = settle(&mut tx, id, State::Discarded, by, why).await?;
                tracing::warn!(
                    id,
                    event_id = settled.event_id,
                    consumer = settled.consumer,
                    by,
                    reason = why,
                    "dead letter discarded"
                );
                metrics::counter!("events_dead_letters_settled_total", "consumer" => self.participant.consumer.durable, "settlement" => "discarded").increment(1);
                settled
            }
        };
        tx.commit().await?;
        Ok(pb::DiscardDeadLetterResponse {
            dead_letter: Some(settled.into_wire()?),
        })
    }
}

/// Letter `id`, locked until the caller's transaction ends.
async fn locked(tx: &mut PgConnection, id: i64) -> Result<Row, ApiError> {
    sqlx::query_as!(
        Row,
        "SELECT id, event_id, subject, consumer, deliveries, reason, payload, parked_at,
                state, settled_at, settled_by, settle_note
           FROM dead_letters WHERE id = $1 FOR UPDATE",
        id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| not_found(id))
}

/// Records the settlement of parked letter `id`.
async fn settle(
    tx: &mut PgConnection,
    id: i64,
    state: State,
    by: &str,
    note: &str,
) -> Result<Row, ApiError> {
    Ok(sqlx::query_as!(
        Row,
        "UPDATE dead_letters
            SET state = $2, settled_at = now(), settled_by = $3, settle_note = $4
          WHERE id = $1 AND state = $5
      RETURNING id, event_id, subject, consumer, deliveries, reason, payload, parked_at,
                state, settled_at, settled_by, settle_note",
        id,
        state as _,
        by,
        note,
        State::Parked as _,
    )
    .fetch_one(&mut *tx)
    .await?)
}
