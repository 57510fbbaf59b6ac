//! Checkouts that stopped moving. A choreographed checkout has no driver to notice that a
//! service stopped reacting; an orchestrated one whose calls all keep failing keeps
//! retrying quietly. Both show here: `checkouts_stalled{mode}` (not ended, no progress
//! recorded for `STALL_AFTER`), and a warning naming a few of them.

use std::time::Duration;

use sqlx::PgPool;

use crate::{ids::SagaId, saga::CoordinationMode};

/// How often the stalled checkouts are counted.
const EVERY: Duration = Duration::from_secs(5);

/// Counts stalled checkouts every few seconds, until dropped.
pub async fn watch(pool: PgPool, stall_after: Duration) {
    loop {
        tokio::time::sleep(EVERY).await;
        match count(&pool, stall_after).await {
            Ok(stalled) => {
                for mode in CoordinationMode::ALL {
                    let (count, examples) = stalled
                        .iter()
                        .find(|(m, ..)| m == mode)
                        .map_or((0, Vec::new()), |(_, count, examples)| {
                            (*count, examples.clone())
                        });
                    metrics::gauge!("checkouts_stalled", "mode" => mode.code()).set(count as f64);
                    if count > 0 {
                        tracing::warn!(%mode, count, ?examples, "checkouts stalled: no progress for {stall_after:?}");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot count stalled checkouts"),
        }
    }
}

/// Per mode: how many checkouts are stalled, and a few of their ids.
async fn count(
    pool: &PgPool,
    stall_after: Duration,
) -> Result<Vec<(CoordinationMode, i64, Vec<SagaId>)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT mode, count(*) AS "count!",
                  (array_agg(saga_id ORDER BY updated_at))[1:5] AS "examples!: Vec<SagaId>"
             FROM sagas
            WHERE status IN ('RUNNING', 'COMPENSATING') AND updated_at < now() - $1::interval
            GROUP BY mode"#,
        platform::db::interval(stall_after),
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.mode, r.count, r.examples))
        .collect())
}
