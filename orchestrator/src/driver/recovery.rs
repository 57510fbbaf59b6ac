//! Recovery: sagas whose driver stopped renewing its lease (a crashed or partitioned
//! replica) are claimed under a fresh token and driven on from what is on disk, forward
//! where possible, else compensating. Every replica scans; `SKIP LOCKED` keeps two scans
//! from taking the same saga.

use std::{sync::Arc, time::Duration};

use crate::{
    driver::{engine::Engine, loaded::Begin},
    store,
};

/// How many sagas one scan takes over at most.
const BATCH: i64 = 64;

/// Takes over expired sagas now and every `interval`, until the engine stops.
pub async fn recover_forever(engine: Arc<Engine>, interval: Duration) {
    tokio::select! {
        () = engine.stopped() => {}
        () = scan_loop(&engine, interval) => {}
    }
}

async fn scan_loop(engine: &Arc<Engine>, interval: Duration) {
    loop {
        match store::claim_expired(engine.pool(), engine.lease(), BATCH).await {
            Ok(claimed) => {
                if !claimed.is_empty() {
                    tracing::info!(count = claimed.len(), "resuming sagas whose lease expired");
                }
                for claim in claimed {
                    let begin = Begin::Stored {
                        saga_id: claim.saga_id,
                        lease: claim.lease,
                    };
                    engine.spawn(begin, Some(&claim.traceparent));
                }
            }
            Err(error) => tracing::warn!(%error, "recovery scan failed; will retry"),
        }
        tokio::time::sleep(interval).await;
    }
}
