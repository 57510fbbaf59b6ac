//! Retention: every binary deletes, on its own schedule, the records it no longer needs
//! once they are older than `RETENTION` (default 30 days), so its database stops growing
//! with every checkout.
//!
//! Each [`Sweep`] is one table's rule, written as a DELETE of at most one batch of rows;
//! [`run`] repeats it until a batch comes back short, every `RETENTION_INTERVAL`. Small
//! batches keep each statement's locks and its WAL short, so a sweep never holds up the
//! checkouts running beside it.
//!
//! What is swept, and why it is safe (the orchestrator adds its own rules for sagas):
//!
//! - `idempotency_keys`, completed and blocked: a replay comes from a caller retrying
//!   within its deadline (seconds), and a late forward call that a block row stops
//!   arrives within the call's deadline too; neither comes a retention later. A key
//!   swept is free again: the same key with any request is then a new call.
//! - `inbox`: a redelivered event is one still in the stream, so an inbox row is kept at
//!   least as long as the stream keeps events ([`inbox`] takes the longer of the two).
//!
//! - `dead_letters` an operator settled (retried or discarded): the decision is on record
//!   for a retention, like a finished saga.
//!
//! Never swept here: parked dead letters (they wait for a person), unsent outbox rows (the
//! relay prunes sent ones), and the domain records themselves (orders, payments, stock,
//! shipments are the business's books, not bookkeeping).

use std::time::Duration;

use sqlx::PgPool;

/// What is kept how long, and how often it is swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Records older than this are deleted (`RETENTION`).
    pub keep: Duration,
    /// How often the sweep runs (`RETENTION_INTERVAL`).
    pub every: Duration,
}

impl Default for Retention {
    /// The defaults of the command line: 30 days, swept hourly.
    fn default() -> Self {
        Self {
            keep: Duration::from_secs(30 * 86_400),
            every: Duration::from_secs(3_600),
        }
    }
}

/// Rows one DELETE removes at most: a few milliseconds of work per statement.
pub const BATCH: i64 = 500;

/// One table's rule.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The table, as metrics and logs name it.
    pub table: &'static str,
    /// A DELETE of at most `$2` rows older than `$1` (an interval).
    pub sql: &'static str,
    /// How old a row must be to go.
    pub keep: Duration,
}

/// The rule for `idempotency_keys`, in every domain service.
pub fn idempotency_keys(retention: Retention) -> Sweep {
    Sweep {
        table: "idempotency_keys",
        sql: "DELETE FROM idempotency_keys k
              USING (SELECT operation, key FROM idempotency_keys
                     WHERE created_at < now() - $1
                     ORDER BY created_at LIMIT $2) old
              WHERE k.operation = old.operation AND k.key = old.key",
        keep: retention.keep,
    }
}

/// The rule for `inbox`, in every binary that consumes events: rows go after the longer
/// of the retention and the stream's `max_age` (`NATS_STREAM_MAX_AGE`), so no event the
/// stream could still deliver again finds its row gone.
pub fn inbox(retention: Retention, stream_max_age: Duration) -> Sweep {
    Sweep {
        table: "inbox",
        sql: "DELETE FROM inbox WHERE event_id IN (
                  SELECT event_id FROM inbox
                  WHERE handled_at < now() - $1
                  ORDER BY handled_at LIMIT $2)",
        keep: retention.keep.max(stream_max_age),
    }
}

/// The rule for `dead_letters`, in every binary that consumes events: only letters an
/// operator settled, a retention after they settled them.
pub fn settled_dead_letters(retention: Retention) -> Sweep {
    Sweep {
        table: "dead_letters",
        sql: "DELETE FROM dead_letters WHERE id IN (
                  SELECT id FROM dead_letters
                  WHERE settled_at < now() - $1
                  ORDER BY settled_at LIMIT $2)",
        keep: retention.keep,
    }
}

/// Sweeps every `retention.every`, forever (a binary's background task). The first sweep
/// runs one interval after start, not during it: start-up is busy enough.
pub async fn run(service: &'static str, pool: PgPool, retention: Retention, sweeps: Vec<Sweep>) {
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + retention.every,
        retention.every,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for sweep in &sweeps {
            match sweep_once(&pool, sweep).await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(service, table = sweep.table, rows, "retention: swept"),
                Err(error) => {
                    tracing::warn!(service, table = sweep.table, %error, "retention: sweep failed; next interval tries again");
                }
            }
        }
    }
}

/// Runs `sweep` batch after batch until one comes back short; returns the rows deleted.
pub async fn sweep_once(pool: &PgPool, sweep: &Sweep) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        // Dynamic: each sweep brings its own statement (platform's tables and a service's
        // own), checked by the retention tests rather than by the query macros.
        let deleted = sqlx::query(sweep.sql)
            .bind(crate::db::interval(sweep.keep))
            .bind(BATCH)
            .execute(pool)
            .await?
            .rows_affected();
        total += deleted;
        metrics::counter!("shop_retention_swept_rows_total", "table" => sweep.table)
            .increment(deleted);
        if deleted < BATCH.unsigned_abs() {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbox_outlives_the_stream() {
        let retention = Retention {
            keep: Duration::from_secs(2),
            every: Duration::from_secs(1),
        };
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!(crate::events::STREAM_MAX_AGE, week);
        assert_eq!(inbox(retention, week).keep, week);
        assert_eq!(
            inbox(Retention::default(), week).keep,
            Retention::default().keep
        );
        assert_eq!(idempotency_keys(retention).keep, Duration::from_secs(2));
    }
}
