//! The SQL of the orchestrator: sagas, their steps, their events and their leases.
//!
//! Every write a driver makes is fenced by its lease: it changes rows only while
//! `lease_owner` is still the driver's token, so a driver that lost its lease (paused,
//! partitioned, or claimed again) cannot overwrite the progress of the one that took over.
//!
//! Rows decode into typed fields (statuses, steps, reasons and codes are enums): a stored
//! value that does not parse fails the read instead of becoming a default.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};

use crate::{
    ids::{LeaseToken, OrderId, SagaId},
    saga::{
        CoordinationMode, Durability, FailureReason, GrpcCode, SagaChange, SagaStatus, Step,
        StepChange, StepStatus,
    },
};

#[derive(Debug, Clone, FromRow)]
pub struct SagaRow {
    pub saga_id: SagaId,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub request: Vec<u8>,
    pub priced_cart: Vec<u8>,
    pub customer_id: String,
    pub status: SagaStatus,
    pub failure_reason: Option<FailureReason>,
    pub total_minor: i64,
    pub currency: String,
    pub order_id: Option<OrderId>,
    pub payment_id: String,
    pub tracking_number: String,
    pub fault: String,
    pub traceparent: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub mode: CoordinationMode,
    /// Bumped by every driver write (see [`Fence`]).
    pub version: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct StepRow {
    pub step: Step,
    pub status: StepStatus,
    pub uncertain: bool,
    pub attempts: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub last_error: String,
    pub last_error_code: Option<GrpcCode>,
    pub compensation_attempts: i32,
    pub compensation_ended_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: i64,
    /// `None` for a saga-level event (only the saga's status changed).
    pub step: Option<Step>,
    pub saga_status: SagaStatus,
    /// The step's status as of this event.
    pub step_status: Option<StepStatus>,
    pub created_at: DateTime<Utc>,
}

/// The columns of [`SagaRow`], spliced into each query at compile time.
macro_rules! saga_columns {
    () => {
        "saga_id, idempotency_key, request_hash, request, priced_cart, customer_id, status,
         failure_reason, total_minor, currency, order_id, payment_id, tracking_number, fault,
         traceparent, created_at, updated_at, mode, version"
    };
}

/// The driver lost its lease: another replica owns the saga now.
#[derive(Debug, thiserror::Error)]
#[error("lease on saga {0} lost")]
pub struct LeaseLost(pub SagaId);

/// Why a store write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    LeaseLost(#[from] LeaseLost),
    /// The driver holds the lease, but the saga on disk is older than the driver's copy:
    /// a Postgres crash took back records committed without a WAL flush. The driver must
    /// reload the saga and go on from there.
    #[error("saga {0} on disk is behind its driver (records lost in a crash)")]
    Behind(SagaId),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What a driver's write is checked against: it changes the saga only if the saga is
/// still this driver's (the lease token) and still as the driver last wrote it (the
/// version, bumped by each write).
#[derive(Debug, Clone, Copy)]
pub struct Fence {
    pub owner: LeaseToken,
    pub version: i64,
}

/// A new saga, its price_cart step already done.
#[derive(Debug)]
pub struct NewSaga<'a> {
    pub saga_id: SagaId,
    pub idempotency_key: &'a str,
    pub request_hash: &'a [u8],
    pub request: &'a [u8],
    pub priced_cart: &'a [u8],
    pub customer_id: &'a str,
    pub total_minor: i64,
    pub currency: &'a str,
    pub fault: &'a str,
    pub traceparent: &'a str,
    pub price_attempts: i32,
    pub price_started: DateTime<Utc>,
    pub mode: CoordinationMode,
}

/// A step's status in a saga just created: priced (before the saga starts), the order's
/// creation intended, the rest pending.
pub fn initial_status(step: Step) -> StepStatus {
    match step {
        Step::PriceCart => StepStatus::Succeeded,
        Step::CreateOrder => StepStatus::Running,
        _ => StepStatus::Pending,
    }
}

/// Inserts a saga leased under the token `owner`, with every step's row and the first intent
/// (create_order RUNNING), in one statement (so one round trip and one commit), flushed
/// before it returns ([`Durability::Flushed`]). `false` when the customer has used the key
/// already.
pub async fn insert_saga(
    conn: &mut PgConnection,
    new: &NewSaga<'_>,
    owner: LeaseToken,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let steps: &[Step] = Step::ALL;
    let positions: Vec<i32> = Step::ALL.iter().map(|s| s.position()).collect();
    let statuses: Vec<StepStatus> = Step::ALL.iter().map(|s| initial_status(*s)).collect();
    let attempts: Vec<i32> = Step::ALL
        .iter()
        .map(|s| {
            if *s == Step::PriceCart {
                new.price_attempts
            } else {
                0
            }
        })
        .collect();
    let inserted: i64 = sqlx::query_scalar(
        "WITH saga AS (
             INSERT INTO sagas (saga_id, idempotency_key, request_hash, request, priced_cart,
                                customer_id, status, total_minor, currency, fault, traceparent,
                                lease_owner, lease_until, mode)
             VALUES ($1, $2, $3, $4, $5, $6, $18, $7, $8, $9, $10, $11,
                     -- A choreographed saga has no driver: its lease never expires, so
                     -- recovery scans never step over it.
                     CASE WHEN $23 = 'choreographed' THEN 'infinity'::timestamptz
                          ELSE now() + $12 END,
                     $23)
             ON CONFLICT (customer_id, idempotency_key) DO NOTHING
             -- Flushed whatever the server's default: a creation is acted on at once.
             RETURNING saga_id, set_config('synchronous_commit', 'on', true)),
         steps AS (
             INSERT INTO saga_steps (saga_id, step, position, status, attempts, started_at, ended_at)
             SELECT saga.saga_id, s.step, s.position, s.status, s.attempts,
                    CASE s.step WHEN $19 THEN $17 WHEN $20 THEN now() END,
                    CASE s.step WHEN $19 THEN now() END
               FROM saga, unnest($13::text[], $14::int[], $15::text[], $16::int[])
                          AS s (step, position, status, attempts)),
         events AS (
             INSERT INTO saga_events (saga_id, step, saga_status, step_status)
             SELECT saga.saga_id, e.step, $18, e.status
               FROM saga, unnest(ARRAY[$19, $20], ARRAY[$21, $22]) WITH ORDINALITY
                          AS e (step, status, n)
              ORDER BY e.n)
         SELECT count(*) FROM saga",
    )
    .bind(new.saga_id)
    .bind(new.idempotency_key)
    .bind(new.request_hash)
    .bind(new.request)
    .bind(new.priced_cart)
    .bind(new.customer_id)
    .bind(new.total_minor)
    .bind(new.currency)
    .bind(new.fault)
    .bind(new.traceparent)
    .bind(owner)
    .bind(platform::db::interval(lease))
    .bind(steps)
    .bind(&positions)
    .bind(&statuses)
    .bind(&attempts)
    .bind(new.price_started)
    .bind(SagaStatus::Running)
    .bind(Step::PriceCart)
    .bind(Step::CreateOrder)
    .bind(StepStatus::Succeeded)
    .bind(StepStatus::Running)
    .bind(new.mode)
    .fetch_one(conn)
    .await?;
    Ok(inserted == 1)
}

/// The checkout `customer_id` placed under `key`: keys are each customer's own, so one
/// customer's key neither finds nor blocks another's checkout.
pub async fn find_by_key(
    pool: &PgPool,
    customer_id: &str,
    key: &str,
) -> Result<Option<SagaRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        saga_columns!(),
        " FROM sagas WHERE customer_id = $1 AND idempotency_key = $2"
    ))
    .bind(customer_id)
    .bind(key)
    .fetch_optional(pool)
    .await
}

pub async fn find_by_order(
    pool: &PgPool,
    order_id: OrderId,
) -> Result<Option<SagaId>, sqlx::Error> {
    sqlx::query_scalar("SELECT saga_id FROM sagas WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(pool)
        .await
}

/// A saga and its steps in forward order.
pub async fn load(
    pool: &PgPool,
    saga_id: SagaId,
) -> Result<Option<(SagaRow, Vec<StepRow>)>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let saga: Option<SagaRow> = sqlx::query_as(concat!(
        "SELECT ",
        saga_columns!(),
        " FROM sagas WHERE saga_id = $1"
    ))
    .bind(saga_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(saga) = saga else { return Ok(None) };
    let steps = steps_of(&mut conn, saga_id).await?;
    Ok(Some((saga, steps)))
}

/// A saga and its steps, its row locked until the transaction ends (the tracker's
/// read-modify-write of a choreographed saga).
pub async fn lock(
    conn: &mut PgConnection,
    saga_id: SagaId,
) -> Result<Option<(SagaRow, Vec<StepRow>)>, sqlx::Error> {
    let saga: Option<SagaRow> = sqlx::query_as(concat!(
        "SELECT ",
        saga_columns!(),
        " FROM sagas WHERE saga_id = $1 FOR UPDATE"
    ))
    .bind(saga_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(saga) = saga else { return Ok(None) };
    let steps = steps_of(conn, saga_id).await?;
    Ok(Some((saga, steps)))
}

async fn steps_of(conn: &mut PgConnection, saga_id: SagaId) -> Result<Vec<StepRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT step, status, uncertain, attempts, started_at, ended_at, last_error,
                last_error_code, compensation_attempts, compensation_ended_at
           FROM saga_steps WHERE saga_id = $1 ORDER BY position",
    )
    .bind(saga_id)
    .fetch_all(conn)
    .await
}

/// Which sagas [`list`] returns; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub status: Option<SagaStatus>,
    pub customer_id: Option<String>,
    pub mode: Option<CoordinationMode>,
    /// Only sagas older than this one (a page's cursor).
    pub before: Option<SagaId>,
}

/// Up to `limit` sagas, newest first, as `filter` says.
pub async fn list(
    pool: &PgPool,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<(SagaRow, Vec<StepRow>)>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let sagas: Vec<SagaRow> = sqlx::query_as(concat!(
        "SELECT ",
        saga_columns!(),
        " FROM sagas WHERE ($1::text IS NULL OR status = $1)
            AND ($2::uuid IS NULL OR saga_id < $2)
            AND ($4::text IS NULL OR customer_id = $4)
            AND ($5::text IS NULL OR mode = $5)
          ORDER BY saga_id DESC LIMIT $3"
    ))
    .bind(filter.status)
    .bind(filter.before)
    .bind(limit)
    .bind(filter.customer_id.as_deref())
    .bind(filter.mode)
    .fetch_all(&mut *conn)
    .await?;
    // Every page's steps in one query, not one per saga.
    let ids: Vec<SagaId> = sagas.iter().map(|s| s.saga_id).collect();
    let rows: Vec<(SagaId, StepRow)> = sqlx::query_as::<_, StepOfSaga>(
        "SELECT saga_id, step, status, uncertain, attempts, started_at, ended_at, last_error,
                last_error_code, compensation_attempts, compensation_ended_at
           FROM saga_steps WHERE saga_id = ANY($1) ORDER BY saga_id, position",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|s| (s.saga_id, s.step))
    .collect();
    let mut by_saga: std::collections::HashMap<SagaId, Vec<StepRow>> =
        std::collections::HashMap::new();
    for (saga_id, step) in rows {
        by_saga.entry(saga_id).or_default().push(step);
    }
    Ok(sagas
        .into_iter()
        .map(|saga| {
            let steps = by_saga.remove(&saga.saga_id).unwrap_or_default();
            (saga, steps)
        })
        .collect())
}

/// A step row with its saga's id, for loading many sagas' steps at once.
#[derive(Debug, FromRow)]
struct StepOfSaga {
    saga_id: SagaId,
    #[sqlx(flatten)]
    step: StepRow,
}

pub async fn events_after(
    pool: &PgPool,
    saga_id: SagaId,
    after: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, step, saga_status, step_status, created_at FROM saga_events
         WHERE saga_id = $1 AND id > $2 ORDER BY id",
    )
    .bind(saga_id)
    .bind(after)
    .fetch_all(pool)
    .await
}

/// The versions of those of `sagas` that are orchestrated (the change feed's poll; a
/// choreographed saga's changes are announced by the tracker). One indexed read however
/// many sagas are watched.
pub async fn orchestrated_versions(
    pool: &PgPool,
    sagas: &[SagaId],
) -> Result<Vec<(SagaId, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT saga_id, version FROM sagas WHERE saga_id = ANY($1) AND mode = $2")
        .bind(sagas)
        .bind(CoordinationMode::Orchestrated)
        .fetch_all(pool)
        .await
}

/// Extends the lease `owner` (a claim's token); `false` when the saga was claimed since.
pub async fn renew(
    pool: &PgPool,
    saga_id: SagaId,
    owner: LeaseToken,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sagas SET lease_until = now() + $3 WHERE saga_id = $1 AND lease_owner = $2",
    )
    .bind(saga_id)
    .bind(owner)
    .bind(platform::db::interval(lease))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A saga taken over by [`claim_expired`] or [`claim_parked`].
#[derive(Debug, Clone, FromRow)]
pub struct Claim {
    pub saga_id: SagaId,
    /// The trace the saga was started in, so the resumed driver joins it.
    pub traceparent: String,
    /// The fresh token of this claim.
    #[sqlx(rename = "lease_owner")]
    pub lease: LeaseToken,
}

/// Takes over up to `limit` unfinished sagas whose lease expired, each under a fresh
/// lease token. `SKIP LOCKED` lets replicas scan at once without waiting on, or taking,
/// each other's rows. (The statuses are spelt out so the partial index
/// `sagas_resumable` serves the scan.)
pub async fn claim_expired(
    pool: &PgPool,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Claim>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE sagas SET lease_owner = gen_random_uuid(), lease_until = now() + $1
          WHERE saga_id IN (
                SELECT saga_id FROM sagas
                 WHERE status IN ('RUNNING', 'COMPENSATING') AND lease_until < now()
                   AND mode = 'orchestrated'
                 ORDER BY lease_until LIMIT $2
                   FOR UPDATE SKIP LOCKED)
          RETURNING saga_id, traceparent, lease_owner",
    )
    .bind(platform::db::interval(lease))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Takes a parked (NEEDS_ATTENTION) saga for a driver under a fresh lease token, as
/// recovery takes an expired one; `None` unless it is parked and started within
/// `retention` (after it the services have swept the keys its compensations need).
pub async fn claim_parked(
    pool: &PgPool,
    saga_id: SagaId,
    lease: Duration,
    retention: Duration,
) -> Result<Option<Claim>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE sagas SET lease_owner = gen_random_uuid(), lease_until = now() + $2
          WHERE saga_id = $1 AND status = 'NEEDS_ATTENTION' AND created_at > now() - $3
          RETURNING saga_id, traceparent, lease_owner",
    )
    .bind(saga_id)
    .bind(platform::db::interval(lease))
    .bind(platform::db::interval(retention))
    .fetch_optional(pool)
    .await
}

/// Gives up the leases `held` (on shutdown), so other replicas resume at once.
pub async fn release(pool: &PgPool, held: &[LeaseToken]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sagas SET lease_until = now() - interval '1 second'
         WHERE lease_owner = ANY($1) AND status IN ('RUNNING', 'COMPENSATING')",
    )
    .bind(held)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Applies a saga change and step changes in one statement (one round trip, one
/// commit), fenced: the rows change only if the saga is still as `fence` says. See
/// [`apply`]. Appends one event per step change (for WatchCheckout), or one saga-level
/// event (empty step) when only the saga's status changes. A decision is flushed before
/// this returns, a record a replay re-derives is not ([`SagaChange::durability`]).
/// Returns the saga's status.
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
            let owner: Option<LeaseToken> =
                sqlx::query_scalar("SELECT lease_owner FROM sagas WHERE saga_id = $1")
                    .bind(saga_id)
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

/// [`write`] on any connection; `fence: None` for a writer that holds no lease (the
/// tracker of choreographed sagas, which locks the row instead). `None` when the fence
/// refused the write.
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
    let names: Vec<Step> = steps.iter().map(|c| c.step).collect();
    let statuses: Vec<Option<StepStatus>> = steps.iter().map(|c| c.status).collect();
    let uncertain: Vec<Option<bool>> = steps.iter().map(|c| c.uncertain).collect();
    let attempts: Vec<i32> = steps.iter().map(|c| c.add_attempts).collect();
    let starts: Vec<bool> = steps.iter().map(|c| c.start).collect();
    let ends: Vec<bool> = steps.iter().map(|c| c.end).collect();
    let errors: Vec<Option<&str>> = steps
        .iter()
        .map(|c| c.error.as_ref().map(|e| e.message.as_str()))
        .collect();
    let codes: Vec<Option<GrpcCode>> = steps
        .iter()
        .map(|c| c.error.as_ref().and_then(|e| e.code))
        .collect();
    let compensations: Vec<i32> = steps.iter().map(|c| c.add_compensation_attempts).collect();
    let compensated: Vec<bool> = steps.iter().map(|c| c.compensation_end).collect();
    // A saga-level event (no step) when only the status changes.
    let events: Vec<Option<Step>> = if steps.is_empty() && saga.status.is_some() {
        vec![None]
    } else {
        names.iter().copied().map(Some).collect()
    };
    sqlx::query_scalar(
        "WITH saga AS (
             UPDATE sagas SET status = COALESCE($3, status),
                              failure_reason = COALESCE($4, failure_reason),
                              order_id = COALESCE($5, order_id),
                              payment_id = COALESCE($6, payment_id),
                              tracking_number = COALESCE($7, tracking_number),
                              updated_at = now(),
                              version = version + 1
              WHERE saga_id = $1 AND ($2::uuid IS NULL OR lease_owner = $2)
                AND ($20::bigint IS NULL OR version = $20)
                AND set_config('synchronous_commit', $19, true) IS NOT NULL
              RETURNING status),
         changes AS (
             SELECT * FROM unnest($8::text[], $9::text[], $10::bool[], $11::int[], $12::bool[],
                                  $13::bool[], $14::text[], $15::text[], $16::int[], $17::bool[])
                    AS c (step, status, uncertain, attempts, start, finish, error, code,
                          compensations, compensated)),
         steps AS (
             UPDATE saga_steps s SET
                 status = COALESCE(c.status, s.status),
                 uncertain = COALESCE(c.uncertain, s.uncertain),
                 attempts = s.attempts + c.attempts,
                 started_at = CASE WHEN c.start THEN COALESCE(s.started_at, now()) ELSE s.started_at END,
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
                    CROSS JOIN unnest($18::text[]) WITH ORDINALITY AS e (step, n)
                    LEFT JOIN steps st ON st.step = e.step
              ORDER BY e.n)
         SELECT status FROM saga",
    )
    .bind(saga_id)
    .bind(fence.map(|f| f.owner))
    .bind(saga.status)
    .bind(saga.failure_reason)
    .bind(saga.order_id)
    .bind(saga.payment_id.as_deref())
    .bind(saga.tracking_number.as_deref())
    .bind(&names)
    .bind(&statuses)
    .bind(&uncertain)
    .bind(&attempts)
    .bind(&starts)
    .bind(&ends)
    .bind(&errors)
    .bind(&codes)
    .bind(&compensations)
    .bind(&compensated)
    .bind(&events)
    .bind(durability.synchronous_commit())
    .bind(fence.map(|f| f.version))
    .fetch_optional(conn)
    .await
}
