//! The Postgres pool and start-up migrations.
//!
//! The pool is created lazily so the gRPC server can bind and answer health checks
//! (NOT_SERVING) while the database is still coming up; [`migrate_until_ready`] then
//! retries until the schema is in place, and only then does the service report SERVING.

use std::time::Duration;

use sqlx::{
    Connection, PgConnection, PgPool,
    migrate::{MigrateError, Migrator},
    postgres::PgPoolOptions,
};

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
                let error = match error {
                    MigrateError::Execute(sqlx::Error::PoolTimedOut) => {
                        why_no_connection(pool).await
                    }
                    other => other.to_string(),
                };
                tracing::warn!(%error, retry_in = ?delay, "database not ready, migrations pending");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Why the pool gave no connection. sqlx's pool answers "pool timed out" whatever the
/// cause, retrying meanwhile; one connection made directly hears what Postgres says
/// (a full server's "too many clients already" above all, which is easy to mistake for a
/// slow one).
async fn why_no_connection(pool: &PgPool) -> String {
    let options = pool.connect_options();
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options)).await {
        Err(_) => "no connection within the pool's timeout, nor a direct one within 5 s: \
                   Postgres is down, unreachable or overloaded"
            .to_owned(),
        Ok(Ok(_)) => "no connection within the pool's timeout, but a direct one succeeds: \
                      every pooled connection is busy (DATABASE_MAX_CONNECTIONS)"
            .to_owned(),
        Ok(Err(sqlx::Error::Database(refused))) if refused.code().as_deref() == Some("53300") => {
            format!(
                "Postgres has no free connection slots (max_connections reached; other \
                 services or clients hold them): {refused}"
            )
        }
        Ok(Err(refused)) => format!("Postgres refuses a connection: {refused}"),
    }
}

/// The tables platform's own code reads and writes in every service's database: the
/// outbox, the inbox and the dead letters of [`crate::events`], and the indexes the
/// retention sweep needs. One copy here instead of one per service. Their versions (2, 3
/// and 4) are the ones these files had when each service kept its own copy, byte for
/// byte, so a database migrated by an older release sees them as already applied.
pub static EVENTS_SCHEMA: Migrator = sqlx::migrate!("./migrations/events");

/// A service's whole schema: platform's [`EVENTS_SCHEMA`] and the service's own
/// migrations, applied in version order on one migrations table. A service's own versions
/// must leave platform's free; a clash is a programming error found by every service's
/// tests, so it panics with both names.
pub fn service_schema(own: &Migrator) -> Migrator {
    let shared: Vec<_> = EVENTS_SCHEMA.iter().collect();
    for migration in own.iter() {
        if let Some(taken) = shared.iter().find(|m| m.version == migration.version) {
            panic!(
                "migration version {} is platform's ({}); renumber the service's {}",
                migration.version, taken.description, migration.description
            );
        }
    }
    Migrator::with_migrations(shared.into_iter().chain(own.iter()).cloned().collect())
}

/// Whether `error` is a unique-constraint violation (a concurrent duplicate).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// `admin` with its database name replaced by `name`.
pub fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A duration as a Postgres `interval`, for `now() + $1` and the like.
pub fn interval(d: std::time::Duration) -> sqlx::postgres::types::PgInterval {
    sqlx::postgres::types::PgInterval {
        months: 0,
        days: 0,
        microseconds: i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::{EVENTS_SCHEMA, database_url, service_schema};
    use sqlx::{
        SqlSafeStr,
        migrate::{Migration, MigrationType, Migrator},
    };

    fn migration(version: i64, sql: &'static str) -> Migration {
        Migration::new(
            version,
            "test".into(),
            MigrationType::Simple,
            sql.into_sql_str(),
            false,
        )
    }

    #[test]
    fn a_service_schema_interleaves_platform_versions_with_its_own() {
        let own =
            Migrator::with_migrations(vec![migration(1, "SELECT 1"), migration(5, "SELECT 5")]);
        let versions: Vec<i64> = service_schema(&own).iter().map(|m| m.version).collect();
        assert_eq!(versions, vec![1, 2, 3, 4, 5]);
        assert_eq!(EVENTS_SCHEMA.iter().count(), 3);
    }

    #[test]
    #[should_panic(expected = "migration version 3 is platform's")]
    fn a_service_version_on_a_platform_one_is_refused() {
        let own = Migrator::with_migrations(vec![migration(3, "SELECT 3")]);
        service_schema(&own);
    }

    #[test]
    fn database_url_swaps_the_name() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            database_url("postgres://u:p@h:1/db?sslmode=disable", "t2"),
            "postgres://u:p@h:1/t2?sslmode=disable"
        );
        assert_eq!(database_url("postgres://h:1", "t3"), "postgres://h:1/t3");
    }
}
