//! The Postgres pool and start-up migrations.
//!
//! The pool is created lazily so the gRPC server can bind and answer health checks
//! (NOT_SERVING) while the database is still coming up; [`migrate_until_ready`] then
//! retries until the schema is in place, and only then does the service report SERVING.

use std::time::Duration;

use sqlx::{PgPool, migrate::Migrator, postgres::PgPoolOptions};

/// A pool that connects on first use. Fails only on a malformed URL.
pub fn lazy_pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(url)
}

/// Applies the embedded migrations, retrying with capped backoff until the database
/// answers. Returns only once the schema is current.
pub async fn migrate_until_ready(pool: &PgPool, migrator: &Migrator) {
    let mut delay = Duration::from_millis(100);
    loop {
        match migrator.run(pool).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?delay, "database not ready, migrations pending");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Whether `error` is a unique-constraint violation (a concurrent duplicate).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}
