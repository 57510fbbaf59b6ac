//! What readers follow: a saga's events (WatchCheckout) and the versions of orchestrated
//! sagas (the change feed's poll).

use sqlx::PgPool;

use super::EventRow;
use crate::{ids::SagaId, saga::CoordinationMode};

/// The saga's events after the one numbered `after`, in order.
pub async fn events_after(
    pool: &PgPool,
    saga_id: SagaId,
    after: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as!(
        EventRow,
        "SELECT id, step, saga_status, step_status, created_at FROM saga_events
          WHERE saga_id = $1 AND id > $2 ORDER BY id",
        saga_id as _,
        after,
    )
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
    let rows = sqlx::query!(
        "SELECT saga_id, version FROM sagas WHERE saga_id = ANY($1) AND mode = $2",
        sagas as _,
        CoordinationMode::Orchestrated as _,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.saga_id, r.version)).collect())
}
