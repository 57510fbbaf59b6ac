//! Leases against a real Postgres: two replicas scanning at once never take the same
//! saga, and a driver whose saga was claimed again is fenced out of every write.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{collections::HashSet, time::Duration};

use orchestrator::store::{self, NewSaga, SagaChange, WriteError};
use platform::testing::TestDb;
use uuid::Uuid;

async fn pool_with_sagas(count: usize) -> (TestDb, sqlx::PgPool, Vec<(Uuid, Uuid)>) {
    let db = TestDb::create("leases").await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    orchestrator::MIGRATOR.run(&pool).await.unwrap();
    let mut sagas = Vec::new();
    for i in 0..count {
        let (saga_id, lease) = (Uuid::now_v7(), Uuid::new_v4());
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
        };
        // A zero lease: as if its replica had died at once.
        assert!(
            store::insert_saga(&pool, &new, lease, Duration::ZERO)
                .await
                .unwrap()
        );
        sagas.push((saga_id, lease));
    }
    (db, pool, sagas)
}

#[tokio::test]
async fn replicas_scanning_at_once_claim_disjoint_sagas() {
    let (_db, pool, sagas) = pool_with_sagas(60).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let scans = (0..4).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            store::claim_expired(&pool, Duration::from_secs(30), 25)
                .await
                .unwrap()
        })
    });
    let mut claimed = Vec::new();
    for scan in futures::future::join_all(scans).await {
        claimed.extend(scan.unwrap().into_iter().map(|(id, _, _)| id));
    }
    let unique: HashSet<Uuid> = claimed.iter().copied().collect();
    assert_eq!(unique.len(), claimed.len(), "a saga was claimed twice");
    assert_eq!(
        unique,
        sagas.iter().map(|(id, _)| *id).collect(),
        "every saga claimed"
    );
    // Nothing is left to claim while those leases run.
    assert!(
        store::claim_expired(&pool, Duration::from_secs(30), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_driver_whose_saga_was_claimed_again_is_fenced_out() {
    let (_db, pool, sagas) = pool_with_sagas(1).await;
    let (saga_id, first) = sagas[0];
    tokio::time::sleep(Duration::from_millis(20)).await;
    let claimed = store::claim_expired(&pool, Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let second = claimed[0].2;
    assert_ne!(first, second, "each claim has its own token");

    assert!(
        !store::renew(&pool, saga_id, first, Duration::from_secs(30))
            .await
            .unwrap()
    );
    let stale = store::write(&pool, saga_id, first, &SagaChange::default(), &[]).await;
    assert!(matches!(stale, Err(WriteError::LeaseLost(_))), "{stale:?}");
    assert!(
        store::renew(&pool, saga_id, second, Duration::from_secs(30))
            .await
            .unwrap()
    );
    assert!(
        store::write(&pool, saga_id, second, &SagaChange::default(), &[])
            .await
            .is_ok()
    );
}
