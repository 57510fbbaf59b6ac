//! A transition written: a saga change and step changes in one statement (one round trip,
//! one commit), with one event per step change for WatchCheckout.

use sqlx::PgPool;

use super::{Fence, LeaseLost, WriteError};
use crate::{
    ids::{LeaseToken, SagaId},
    saga::{Durability, GrpcCode, SagaChange, SagaStatus, Step, StepChange, StepStatus},
};

/// Applies a saga change and step changes, fenced: the rows change only if the saga is
/// still as `fence` says. See [`apply`]. A decision is flushed before this returns, a
/// record a replay re-derives is not ([`SagaChange::durability`]). Returns the saga's
/// status.
pub async fn write(
    pool: &PgPool,
    saga_id: SagaId,
    fence: Fence,
    saga: &SagaChange,
    steps: &[StepChange],
) -> Result<SagaStatus, WriteError> {
    match apply(pool, saga_id, Some(fence), saga.durability(), saga, steps).await? {
        Some(status) => Ok(status),
        // Which check failed: the rare path, so a second statement only here.
        None => {
            let owner: Option<LeaseToken> = sqlx::query_scalar!(
                "SELECT lease_owner FROM sagas WHERE saga_id = $1",
                saga_id as _
            )
            .fetch_optional(pool)
            .await?
            .flatten();
            if owner == Some(fence.owner) {
                Err(WriteError::Behind(saga_id))
            } else {
                Err(LeaseLost(saga_id).into())
            }
        }
    }
}

/// The step changes of one write, one array per column (one element per change).
struct StepColumns<'a> {
    step: Vec<Step>,
    status: Vec<Option<StepStatus>>,
    uncertain: Vec<Option<bool>>,
    attempts: Vec<i32>,
    start: Vec<bool>,
    finish: Vec<bool>,
    error: Vec<Option<&'a str>>,
    code: Vec<Option<GrpcCode>>,
    compensations: Vec<i32>,
    compensated: Vec<bool>,
}

impl<'a> StepColumns<'a> {
    fn of(steps: &'a [StepChange]) -> Self {
        Self {
            step: steps.iter().map(|c| c.step).collect(),
            status: steps.iter().map(|c| c.status).collect(),
            uncertain: steps.iter().map(|c| c.uncertain).collect(),
            attempts: steps.iter().map(|c| c.add_attempts).collect(),
            start: steps.iter().map(|c| c.start).collect(),
            finish: steps.iter().map(|c| c.end).collect(),
            error: steps
                .iter()
                .map(|c| c.error.as_ref().map(|e| e.message.as_str()))
                .collect(),
            code: steps
                .iter()
                .map(|c| c.error.as_ref().and_then(|e| e.code))
                .collect(),
            compensations: steps.iter().map(|c| c.add_compensation_attempts).collect(),
            compensated: steps.iter().map(|c| c.compensation_end).collect(),
        }
    }
}

/// [`write`] on any connection; `fence: None` for a writer that holds no lease (the
/// tracker of choreographed sagas, which locks the row instead). `None` when the fence
/// refused the write. Appends one event per step change, or one saga-level event (no
/// step) when only the saga's status changes.
///
/// The durability is set inside the statement (`set_config(.., true)` lasts until its
/// transaction commits), so a deferred write costs no extra round trip for a `SET`.
pub async fn apply<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    saga_id: SagaId,
    fence: Option<Fence>,
    durability: Durability,
    saga: &SagaChange,
    steps: &[StepChange],
) -> Result<Option<SagaStatus>, sqlx::Error> {
    let columns = StepColumns::of(steps);
    // A saga-level event (no step) when only the status changes.
    let events: Vec<Option<Step>> = if steps.is_empty() && saga.status.is_some() {
        vec![None]
    } else {
        columns.step.iter().copied().map(Some).collect()
    };
    sqlx::query_scalar!(
        "WITH saga AS (
             UPDATE sagas SET status = COALESCE($2, status),
                              -- Goes with the status: set by a park, cleared by any other.
                              resume_from = CASE WHEN $2::text IS NULL THEN resume_from
                                                 ELSE $3 END,
                              failure_reason = COALESCE($4, failure_reason),
                              order_id = COALESCE($5, order_id),
                              payment_id = COALESCE($6, payment_id),
                              tracking_number = COALESCE($7, tracking_number),
                              updated_at = now(),
                              version = version + 1
              WHERE saga_id = $1 AND ($8::uuid IS NULL OR lease_owner = $8)
                AND ($9::bigint IS NULL OR version = $9)
                AND set_config('synchronous_commit', $10, true) IS NOT NULL
              RETURNING status),
         changes AS (
             SELECT * FROM unnest($11::text[], $12::text[], $13::bool[], $14::int[],
                                  $15::bool[], $16::bool[], $17::text[], $18::text[],
                                  $19::int[], $20::bool[])
                    AS c (step, status, uncertain, attempts, start, finish, error, code,
                          compensations, compensated)),
         steps AS (
             UPDATE saga_steps s SET
                 status = COALESCE(c.status, s.status),
                 uncertain = COALESCE(c.uncertain, s.uncertain),
                 attempts = s.attempts + c.attempts,
                 started_at = CASE WHEN c.start THEN COALESCE(s.started_at, now())
                                   ELSE s.started_at END,
                 ended_at = CASE WHEN c.finish THEN now() ELSE s.ended_at END,
                 last_error = COALESCE(c.error, s.last_error),
                 -- A new error replaces the last one, code and all (a decline has none).
                 last_error_code = CASE WHEN c.error IS NULL THEN s.last_error_code
                                        ELSE c.code END,
                 compensation_attempts = s.compensation_attempts + c.compensations,
                 compensation_ended_at =
                     CASE WHEN c.compensated THEN now() ELSE s.compensation_ended_at END
               FROM changes c
              WHERE s.saga_id = $1 AND s.step = c.step AND EXISTS (SELECT 1 FROM saga)
             RETURNING s.step, s.status),
         events AS (
             INSERT INTO saga_events (saga_id, step, saga_status, step_status)
             SELECT $1, e.step, saga.status, st.status
               FROM saga
                    CROSS JOIN unnest($21::text[]) WITH ORDINALITY AS e (step, n)
                    LEFT JOIN steps st ON st.step = e.step
              ORDER BY e.n)
         SELECT status FROM saga",
        saga_id as _,
        saga.status as _,
        saga.resume_from as _,
        saga.failure_reason as _,
        saga.order_id as _,
        saga.payment_id.as_deref(),
        saga.tracking_number.as_deref(),
        fence.map(|f| f.owner) as _,
        fence.map(|f| f.version),
        durability.synchronous_commit(),
        &columns.step as _,
        &columns.status as _,
        &columns.uncertain as _,
        &columns.attempts,
        &columns.start,
        &columns.finish,
        &columns.error as _,
        &columns.code as _,
        &columns.compensations,
        &columns.compensated,
        &events as _,
    )
    .fetch_optional(conn)
    .await
}
