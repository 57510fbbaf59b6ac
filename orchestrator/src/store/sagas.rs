//! A new saga, and sagas read with their steps.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{SagaRow, StepRow};
use crate::{
    ids::{LeaseToken, OrderId, SagaId},
    saga::{CoordinationMode, SagaStatus, Step, StepStatus, rules::SagaState},
};

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

/// The step rows of a saga just created, one array per column (one element per step, in
/// forward order), as the rules start a saga ([`SagaState::created`]).
struct CreatedSteps {
    step: Vec<Step>,
    position: Vec<i32>,
    status: Vec<StepStatus>,
    attempts: Vec<i32>,
    /// A start that happened before the saga: price_cart's, which PlaceOrder ran.
    started_at: Vec<Option<DateTime<Utc>>>,
    /// Started now, with the saga: an intent.
    start: Vec<bool>,
    /// Ended now, with the saga.
    finish: Vec<bool>,
    /// The steps the creation moved, in order: one event each.
    announced: Vec<Step>,
}

impl CreatedSteps {
    fn of(created: &SagaState, new: &NewSaga<'_>) -> Self {
        let steps = &created.steps;
        let priced = |step: Step| step == Step::PriceCart;
        Self {
            step: steps.iter().map(|s| s.step).collect(),
            position: steps.iter().map(|s| s.step.position()).collect(),
            status: steps.iter().map(|s| s.status).collect(),
            attempts: steps
                .iter()
                .map(|s| {
                    if priced(s.step) {
                        new.price_attempts
                    } else {
                        0
                    }
                })
                .collect(),
            started_at: steps
                .iter()
                .map(|s| priced(s.step).then_some(new.price_started))
                .collect(),
            start: steps
                .iter()
                .map(|s| s.status == StepStatus::Running)
                .collect(),
            finish: steps
                .iter()
                .map(|s| s.status == StepStatus::Succeeded)
                .collect(),
            announced: steps
                .iter()
                .filter(|s| s.status != StepStatus::Pending)
                .map(|s| s.step)
                .collect(),
        }
    }
}

/// Inserts a saga leased under the token `owner`, with every step's row and an event for
/// each step its creation moved (price_cart done, create_order's intent), in one statement
/// (so one round trip and one commit), flushed before it returns (a creation is acted on at
/// once). `false` when the customer has used the key already.
pub async fn insert_saga(
    conn: &mut PgConnection,
    new: &NewSaga<'_>,
    owner: LeaseToken,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let created = SagaState::created();
    let steps = CreatedSteps::of(&created, new);
    let inserted = sqlx::query_scalar!(
        r#"WITH saga AS (
             INSERT INTO sagas (saga_id, idempotency_key, request_hash, request, priced_cart,
                                customer_id, total_minor, currency, fault, traceparent, mode,
                                status, lease_owner, lease_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                     -- A choreographed saga has no driver: its lease never expires, so
                     -- recovery scans never step over it.
                     CASE WHEN $11 = 'choreographed' THEN 'infinity'::timestamptz
                          ELSE now() + $14::interval END)
             ON CONFLICT (customer_id, idempotency_key) DO NOTHING
             -- Flushed whatever the server's default.
             RETURNING saga_id, status, set_config('synchronous_commit', 'on', true)),
         steps AS (
             INSERT INTO saga_steps (saga_id, step, position, status, attempts, started_at,
                                     ended_at)
             SELECT saga.saga_id, s.step, s.position, s.status, s.attempts,
                    COALESCE(s.started_at, CASE WHEN s.start THEN now() END),
                    CASE WHEN s.finish THEN now() END
               FROM saga, unnest($15::text[], $16::int[], $17::text[], $18::int[],
                                 $19::timestamptz[], $20::bool[], $21::bool[])
                          AS s (step, position, status, attempts, started_at, start, finish)
             RETURNING step, status),
         events AS (
             INSERT INTO saga_events (saga_id, step, saga_status, step_status)
             SELECT saga.saga_id, e.step, saga.status, st.status
               FROM saga
                    CROSS JOIN unnest($22::text[]) WITH ORDINALITY AS e (step, n)
                    JOIN steps st ON st.step = e.step
              ORDER BY e.n)
         SELECT count(*) AS "inserted!" FROM saga"#,
        new.saga_id as _,
        new.idempotency_key,
        new.request_hash,
        new.request,
        new.priced_cart,
        new.customer_id,
        new.total_minor,
        new.currency,
        new.fault,
        new.traceparent,
        new.mode as _,
        created.status as _,
        owner as _,
        platform::db::interval(lease),
        &steps.step as _,
        &steps.position,
        &steps.status as _,
        &steps.attempts,
        &steps.started_at as _,
        &steps.start,
        &steps.finish,
        &steps.announced as _,
    )
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
    sqlx::query_as!(
        SagaRow,
        "SELECT saga_id, idempotency_key, request_hash, request, priced_cart, customer_id,
                status, resume_from, failure_reason, total_minor, currency, order_id,
                payment_id, tracking_number, fault, traceparent, created_at, updated_at,
                mode, version
           FROM sagas WHERE customer_id = $1 AND idempotency_key = $2",
        customer_id,
        key,
    )
    .fetch_optional(pool)
    .await
}

pub async fn find_by_order(
    pool: &PgPool,
    order_id: OrderId,
) -> Result<Option<SagaId>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT saga_id FROM sagas WHERE order_id = $1",
        order_id as _
    )
    .fetch_optional(pool)
    .await
}

/// A saga and its steps in forward order.
pub async fn load(
    pool: &PgPool,
    saga_id: SagaId,
) -> Result<Option<(SagaRow, Vec<StepRow>)>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let saga = sqlx::query_as!(
        SagaRow,
        "SELECT saga_id, idempotency_key, request_hash, request, priced_cart, customer_id,
                status, resume_from, failure_reason, total_minor, currency, order_id,
                payment_id, tracking_number, fault, traceparent, created_at, updated_at,
                mode, version
           FROM sagas WHERE saga_id = $1",
        saga_id as _,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(saga) = saga else { return Ok(None) };
    let steps = steps_of(&mut conn, &[saga_id]).await?;
    Ok(Some((saga, steps)))
}

/// A saga and its steps, its row locked until the transaction ends (the tracker's
/// read-modify-write of a choreographed saga).
pub async fn lock(
    conn: &mut PgConnection,
    saga_id: SagaId,
) -> Result<Option<(SagaRow, Vec<StepRow>)>, sqlx::Error> {
    let saga = sqlx::query_as!(
        SagaRow,
        "SELECT saga_id, idempotency_key, request_hash, request, priced_cart, customer_id,
                status, resume_from, failure_reason, total_minor, currency, order_id,
                payment_id, tracking_number, fault, traceparent, created_at, updated_at,
                mode, version
           FROM sagas WHERE saga_id = $1 FOR UPDATE",
        saga_id as _,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(saga) = saga else { return Ok(None) };
    let steps = steps_of(conn, &[saga_id]).await?;
    Ok(Some((saga, steps)))
}

/// The steps of `sagas`, each saga's in forward order: one query however many sagas.
async fn steps_of(conn: &mut PgConnection, sagas: &[SagaId]) -> Result<Vec<StepRow>, sqlx::Error> {
    sqlx::query_as!(
        StepRow,
        "SELECT saga_id, step, status, uncertain, attempts, started_at, ended_at, last_error,
                last_error_code, compensation_attempts, compensation_ended_at
           FROM saga_steps WHERE saga_id = ANY($1) ORDER BY saga_id, position",
        sagas as _,
    )
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
    let sagas = sqlx::query_as!(
        SagaRow,
        "SELECT saga_id, idempotency_key, request_hash, request, priced_cart, customer_id,
                status, resume_from, failure_reason, total_minor, currency, order_id,
                payment_id, tracking_number, fault, traceparent, created_at, updated_at,
                mode, version
           FROM sagas
          WHERE ($1::text IS NULL OR status = $1)
            AND ($2::text IS NULL OR customer_id = $2)
            AND ($3::text IS NULL OR mode = $3)
            AND ($4::uuid IS NULL OR saga_id < $4)
          ORDER BY saga_id DESC LIMIT $5",
        filter.status as _,
        filter.customer_id.as_deref(),
        filter.mode as _,
        filter.before as _,
        limit,
    )
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<SagaId> = sagas.iter().map(|s| s.saga_id).collect();
    let mut by_saga: HashMap<SagaId, Vec<StepRow>> = HashMap::new();
    for step in steps_of(&mut conn, &ids).await? {
        by_saga.entry(step.saga_id).or_default().push(step);
    }
    Ok(sagas
        .into_iter()
        .map(|saga| {
            let steps = by_saga.remove(&saga.saga_id).unwrap_or_default();
            (saga, steps)
        })
        .collect())
}
