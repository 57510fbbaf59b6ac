//! Several replicas of one binary starting at once against one empty database, as a
//! Kubernetes Deployment of two does on its first rollout: each applies the embedded
//! migrations at start, so they must not trip over each other. sqlx's migrator takes a
//! Postgres advisory lock (per database) before it looks at what is applied; this test
//! shows the real binaries queue on that lock, then apply every migration exactly once,
//! and that both report SERVING where the kubelet's gRPC probes ask: the plaintext,
//! health-only listener (HEALTH_LISTEN_ADDR), while the main port keeps mutual TLS.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Child,
    time::{Duration, Instant},
};

use e2e::{
    net::free_port,
    pki::Pki,
    postgres::Postgres,
    stack::{bin_dir, logged_command},
};
use platform::security::Principal;
use sqlx::{Connection, PgConnection};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// CRC-32 (ISO-HDLC, the common one), for the lock id below.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The advisory lock sqlx's Postgres migrator takes for a database: sqlx-postgres 0.9's
/// `generate_lock_id`, `0x3d32ad9e * crc32(database name)`. Should sqlx change it, the
/// replicas no longer wait on the lock this test holds and the test says so.
fn migration_lock_id(database: &str) -> i64 {
    0x3d32_ad9e * i64::from(crc32(database.as_bytes()))
}

struct Replica {
    child: Child,
    health: SocketAddr,
    main: SocketAddr,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The overall status on `addr`, asked in plaintext as the kubelet asks; `None` when it
/// does not answer.
async fn plaintext_health(addr: SocketAddr) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(1))
        .connect()
        .await
        .ok()?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .ok()?;
    Some(reply.into_inner().status())
}

/// The command of one replica: mutual TLS as `principal`, health alone in plaintext on
/// another port, events to a broker that is not there (a service serves without one).
fn replica_command(
    binary: &str,
    principal: Principal,
    pki: &Pki,
    url: &str,
    log: &Path,
) -> (std::process::Command, SocketAddr, SocketAddr) {
    let main = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let health = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let mut command = logged_command(&bin_dir().unwrap().join(binary), main, log).unwrap();
    command
        .env("DATABASE_URL", url)
        .env("DATABASE_MAX_CONNECTIONS", "2")
        .env("HEALTH_LISTEN_ADDR", health.to_string())
        .env(
            "NATS_URL",
            format!("nats://127.0.0.1:{}", free_port().unwrap()),
        )
        .envs(pki.env(principal));
    if principal == Principal::Orchestrator {
        command.env("AUTH_JWT_SECRET_FILE", pki.secret());
    }
    (command, main, health)
}

/// How many of the migrator's lock requests on `database` wait.
async fn waiting_on_the_lock(admin: &mut PgConnection, database: &str) -> i64 {
    let key = migration_lock_id(database);
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = $1 \
           AND l.classid::bigint = ($2 >> 32) & 4294967295 AND l.objid::bigint = $2 & 4294967295",
    )
    .bind(database)
    .bind(key)
    .fetch_one(admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn two_replicas_starting_at_once_migrate_an_empty_database_once_and_both_serve() {
    let postgres = Postgres::find_or_start().await.expect("a Postgres");
    let dir = std::env::temp_dir().join(format!("rollout-{}", std::process::id()));
    let pki = Pki::generate(&dir.join("pki")).unwrap();
    // The orchestrator, and a domain service, whose schema is platform's events tables
    // and its own migrations on one version line.
    for (binary, principal, migrations) in [
        (
            "orchestrator",
            Principal::Orchestrator,
            &["orchestrator/migrations"][..],
        ),
        (
            "order-svc",
            Principal::OrderSvc,
            &["platform/migrations/events", "order-svc/migrations"][..],
        ),
    ] {
        let database = format!(
            "rollout_{}_{}",
            binary.replace('-', "_"),
            std::process::id()
        );
        let url = postgres.create_database(&database).await.unwrap();
        let expected: usize = migrations
            .iter()
            .map(|dir| {
                std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir))
                    .unwrap()
                    .filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .path()
                            .extension()
                            .is_some_and(|x| x == "sql")
                    })
                    .count()
            })
            .sum();

        // Hold the migrator's lock, so that both replicas are seen queuing on it.
        let mut holder = PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(migration_lock_id(&database))
            .execute(&mut holder)
            .await
            .unwrap();

        // Both commands made first, then spawned back to back: the same moment.
        let commands: Vec<_> = (0..2)
            .map(|n| {
                let log = dir.join(format!("{binary}-{n}.log"));
                let (command, main, health) = replica_command(binary, principal, &pki, &url, &log);
                (command, main, health, log)
            })
            .collect();
        let replicas: Vec<Replica> = commands
            .into_iter()
            .map(|(mut command, main, health, log)| Replica {
                child: command.spawn().unwrap(),
                main,
                health,
                log,
            })
            .collect();

        let mut admin = PgConnection::connect(&postgres.admin_url).await.unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while waiting_on_the_lock(&mut admin, &database).await < 2 {
            assert!(
                Instant::now() < until,
                "{binary}: the two replicas never both waited on sqlx's migration lock \
                 (has sqlx changed its lock id?); logs in {}",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for replica in &replicas {
            assert_eq!(
                plaintext_health(replica.health).await,
                Some(ServingStatus::NotServing),
                "{binary}: NOT_SERVING while its migrations wait"
            );
        }

        // Let them go: one migrates, the other finds it done.
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(migration_lock_id(&database))
            .execute(&mut holder)
            .await
            .unwrap();
        for replica in &replicas {
            let until = Instant::now() + Duration::from_secs(30);
            while plaintext_health(replica.health).await != Some(ServingStatus::Serving) {
                assert!(
                    Instant::now() < until,
                    "{binary}: a replica never reported SERVING; see {}",
                    replica.log.display()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // The main port is mutual TLS still: a plaintext health check gets nowhere.
            assert_eq!(
                plaintext_health(replica.main).await,
                None,
                "{binary}: the main port answers plaintext"
            );
        }

        let applied: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut holder)
                .await
                .unwrap();
        assert_eq!(
            applied.len(),
            expected,
            "{binary}: every migration applied once: {applied:?}"
        );
        assert!(applied.iter().all(|(_, success)| *success), "{applied:?}");
        for replica in &replicas {
            let log = std::fs::read_to_string(&replica.log).unwrap();
            assert!(
                !log.contains("migrations pending"),
                "{binary}: a replica's migration attempt failed instead of waiting its turn:\n{log}"
            );
        }
        drop(replicas);
        drop(holder);
        postgres.drop_database(&database).await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
