//! Leases against a real Postgres: two replicas scanning at once never take the same
//! saga, and a driver whose saga was claimed again is fenced out of every write. Expiry is
//! set in the database (`lease_until` in the past) rather than waited for, so the tests
//! neither sleep nor depend on the clock.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{collections::HashSet, time::Duration};

use orchestrator::{
    ids::{LeaseToken, SagaId},
    saga::{CoordinationMode, SagaChange},
    store::{self, Fence, NewSaga, WriteError},
};
use platform::testing::TestDb;

const LEASE: Duration = Duration::from_secs(30);

async fn pool_with_sagas(count: usize) -> (TestDb, sqlx::PgPool, Vec<(SagaId, LeaseToken)>) {
    let db = TestDb::create("leases").await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    orchestrator::MIGRATOR.run(&pool).await.unwrap();
    let mut sagas = Vec::new();
    for i in 0..count {
        let (saga_id, lease) = (SagaId::generate(), LeaseToken::generate());
        let key = format!("k{i}");
        let new = NewSaga {
            saga_id,
            idempotency_key: &key,
            request_hash: b"h",
            request: b"",
            priced_cart: b"",
            customer_id: "c",
            total_minor: 1,
            currency: "EUR",
            fault: "",
            traceparent: "",
            price_attempts: 1,
            price_started: chrono::Utc::now(),
            mode: CoordinationMode::Orchestrated,
        };
        let mut conn = pool.acquire().await.unwrap();
        assert!(
            store::insert_saga(&mut conn, &new, lease, LEASE)
                .await
                .unwrap()
        );
        sagas.push((saga_id, lease));
    }
    // As if every replica that held them had died a minute ago.
    sqlx::query("UPDATE sagas SET lease_until = now() - interval '1 minute'")
        .execute(&pool)
        .await
        .unwrap();
    (db, pool, sagas)
}

#[tokio::test]
async fn replicas_scanning_at_once_claim_disjoint_sagas() {
    let (_db, pool, sagas) = pool_with_sagas(60).await;
    let scans = (0..4).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move { store::claim_expired(&pool, LEASE, 25).await.unwrap() })
    });
    let mut claimed = Vec::new();
    for scan in futures::future::join_all(scans).await {
        claimed.extend(scan.unwrap().into_iter().map(|c| c.saga_id));
    }
    let unique: HashSet<SagaId> = claimed.iter().copied().collect();
    assert_eq!(unique.len(), claimed.len(), "a saga was claimed twice");
    assert_eq!(
        unique,
        sagas.iter().map(|(id, _)| *id).collect(),
        "every saga claimed"
    );
    // Nothing is left to claim while those leases run.
    assert!(
        store::claim_expired(&pool, LEASE, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_driver_whose_saga_was_claimed_again_is_fenced_out() {
    let (_db, pool, sagas) = pool_with_sagas(1).await;
    let (saga_id, first) = sagas[0];
    let claimed = store::claim_expired(&pool, LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let second = claimed[0].lease;
    assert_ne!(first, second, "each claim has its own token");

    assert!(!store::renew(&pool, saga_id, first, LEASE).await.unwrap());
    let fence = |owner, version| Fence { owner, version };
    let stale = store::write(&pool, saga_id, fence(first, 0), &SagaChange::default(), &[]).await;
    assert!(matches!(stale, Err(WriteError::LeaseLost(_))), "{stale:?}");
    assert!(store::renew(&pool, saga_id, second, LEASE).await.unwrap());
    assert!(
        store::write(
            &pool,
            saga_id,
            fence(second, 0),
            &SagaChange::default(),
            &[]
        )
        .await
        .is_ok()
    );
}

/// A driver whose last write a Postgres crash took back (it committed without a WAL
/// flush) still holds the lease, but the version on disk is behind its own: its next write
/// is refused as `Behind`, so it reloads instead of building on a record that is gone.
#[tokio::test]
async fn a_write_built_on_a_lost_record_is_refused_as_behind() {
    let (_db, pool, sagas) = pool_with_sagas(1).await;
    let (saga_id, owner) = sagas[0];
    let fence = |version| Fence { owner, version };
    store::write(&pool, saga_id, fence(0), &SagaChange::default(), &[])
        .await
        .unwrap();
    // The driver now holds version 1. Had that write been lost, the disk would still say
    // 0 and the driver's next write would name 1: the same mismatch as naming 0 now.
    let behind = store::write(&pool, saga_id, fence(0), &SagaChange::default(), &[]).await;
    assert!(matches!(behind, Err(WriteError::Behind(_))), "{behind:?}");
    store::write(&pool, saga_id, fence(1), &SagaChange::default(), &[])
        .await
        .unwrap();
}
