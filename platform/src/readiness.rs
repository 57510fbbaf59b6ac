//! Readiness after start. A server that can no longer reach its database cannot do any
//! of its work, so it says so: its gRPC services turn NOT_SERVING in the health service
//! (clients and load balancers stop sending it work; Kubernetes' readiness probe, which
//! names the service, takes the pod out of its Service), and SERVING again once the
//! database answers, without a restart. The overall status (`""`) stays SERVING: the
//! process is alive, and restarting it (the liveness probe's business) would not bring
//! the database back.
//!
//! The probe is `SELECT 1` through the server's own pool, so it also sees a pool that
//! cannot hand out a connection for seconds: to a caller that is the same outage.

use std::time::Duration;

use sqlx::PgPool;
use tonic_health::{ServingStatus, server::HealthReporter};

/// How often the database is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long one probe may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Failed probes in a row before the services turn NOT_SERVING: one slow probe on a busy
/// machine is no outage.
pub const FAILURES_BEFORE_NOT_SERVING: u32 = 2;

/// Whether one probe reached the database.
async fn probe(pool: &PgPool) -> bool {
    matches!(
        tokio::time::timeout(
            PROBE_TIMEOUT,
            sqlx::query_scalar!("SELECT 1 AS reached").fetch_one(pool)
        )
        .await,
        Ok(Ok(_))
    )
}

/// Probes `pool` every [`PROBE_EVERY`] until dropped, turning `services` NOT_SERVING
/// after [`FAILURES_BEFORE_NOT_SERVING`] failed probes in a row and SERVING after the
/// next one that succeeds. Runs once the server reported SERVING.
pub async fn watch_database(
    server: &'static str,
    pool: PgPool,
    reporter: HealthReporter,
    services: Vec<&'static str>,
) {
    let mut failures = 0_u32;
    let mut ticks = tokio::time::interval(PROBE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let reached = probe(&pool).await;
        let status = match (reached, failures) {
            (true, 0) => continue,
            (true, _) => {
                tracing::info!(
                    server,
                    after = failures,
                    "database reachable again: SERVING"
                );
                failures = 0;
                ServingStatus::Serving
            }
            (false, _) => {
                failures = failures.saturating_add(1);
                if failures != FAILURES_BEFORE_NOT_SERVING {
                    continue;
                }
                tracing::warn!(server, "database unreachable: NOT_SERVING until it answers");
                ServingStatus::NotServing
            }
        };
        metrics::gauge!("database_reachable", "server" => server).set(if reached {
            1.0
        } else {
            0.0
        });
        for service in &services {
            reporter.set_service_status(*service, status).await;
        }
    }
}
