//! Leases: which replica drives a saga. Renewed by its driver, claimed by recovery when it
//! expires or by ResumeCheckout when the saga is parked, handed back on shutdown. The
//! statuses a scan looks for are spelt out in each query, so the partial index
//! `sagas_resumable` serves it.

use std::time::Duration;

use sqlx::PgPool;

use crate::ids::{LeaseToken, SagaId};

/// Extends the lease `owner` (a claim's token); `false` when the saga was claimed since.
pub async fn renew(
    pool: &PgPool,
    saga_id: SagaId,
    owner: LeaseToken,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE sagas SET lease_until = now() + $3::interval
          WHERE saga_id = $1 AND lease_owner = $2",
        saga_id as _,
        owner as _,
        platform::db::interval(lease),
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A saga taken over by [`claim_expired`] or [`claim_parked`].
#[derive(Debug, Clone)]
pub struct Claim {
    pub saga_id: SagaId,
    /// The trace the saga was started in, so the resumed driver joins it.
    pub traceparent: String,
    /// The fresh token of this claim.
    pub lease: LeaseToken,
}

/// Takes over up to `limit` unfinished sagas whose lease expired, each under a fresh
/// lease token. `SKIP LOCKED` lets replicas scan at once without waiting on, or taking,
/// each other's rows.
pub async fn claim_expired(
    pool: &PgPool,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Claim>, sqlx::Error> {
    sqlx::query_as!(
        Claim,
        r#"UPDATE sagas SET lease_owner = gen_random_uuid(), lease_until = now() + $1::interval
            WHERE saga_id IN (
                  SELECT saga_id FROM sagas
                   WHERE status IN ('RUNNING', 'COMPENSATING') AND lease_until < now()
                     AND mode = 'orchestrated'
                   ORDER BY lease_until LIMIT $2
                     FOR UPDATE SKIP LOCKED)
            RETURNING saga_id, traceparent, lease_owner AS "lease!""#,
        platform::db::interval(lease),
        limit,
    )
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
    sqlx::query_as!(
        Claim,
        r#"UPDATE sagas SET lease_owner = gen_random_uuid(), lease_until = now() + $2::interval
            WHERE saga_id = $1 AND status = 'NEEDS_ATTENTION'
              AND created_at > now() - $3::interval
            RETURNING saga_id, traceparent, lease_owner AS "lease!""#,
        saga_id as _,
        platform::db::interval(lease),
        platform::db::interval(retention),
    )
    .fetch_optional(pool)
    .await
}

/// Gives up the leases `held` (on shutdown), so other replicas resume at once.
pub async fn release(pool: &PgPool, held: &[LeaseToken]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE sagas SET lease_until = now() - interval '1 second'
          WHERE lease_owner = ANY($1) AND status IN ('RUNNING', 'COMPENSATING')",
        held as _,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
