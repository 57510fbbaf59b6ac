//! The leases of one replica: which saga claims it holds, keeping them alive while a
//! driver runs, and handing them back on shutdown.
//!
//! A lease is a token on the saga row with an expiry. Each claim gets a fresh token and
//! every write is fenced by it (see `store`), so losing a lease (a pause, a partition,
//! another claim) stops a driver's writes at once; renewing it every third of its length
//! keeps a healthy driver's saga its own.
//!
//! Fencing the writes is not enough for a replica cut off from its database while it
//! still reaches the services: it can write nothing, but its driver could go on calling
//! services (a step's retries) after another replica took the saga over. So a driver
//! also fences itself by time: when it has not renewed for two thirds of the lease, it
//! cannot know the lease is still its own before it expires, and it stops, before the
//! expiry lets anyone else claim the saga.

use std::{collections::HashSet, sync::Mutex, time::Duration};

use sqlx::PgPool;
use tokio::sync::Notify;

use crate::{
    ids::{LeaseToken, SagaId},
    store::{self, LeaseLost},
};

/// The lease tokens this replica's drivers hold now.
#[derive(Debug)]
pub struct Leases {
    /// How long a lease lasts without renewal.
    duration: Duration,
    held: Mutex<HashSet<LeaseToken>>,
    /// Woken whenever a driver lets its token go.
    let_go: Notify,
}

/// A held token; dropping it (the driver ended, however) forgets it.
#[derive(Debug)]
pub struct Held<'a> {
    leases: &'a Leases,
    token: LeaseToken,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.leases.lock().remove(&self.token);
        self.leases.let_go.notify_waiters();
    }
}

/// Whether a driver whose lease was last renewed `since` ago must stop: the next
/// renewal, a third of the lease later, could come after the lease expired.
fn must_stop(since: Duration, lease: Duration) -> bool {
    since + lease / 3 >= lease
}

impl Leases {
    pub fn new(duration: Duration) -> Self {
        Self {
            duration,
            held: Mutex::default(),
            let_go: Notify::new(),
        }
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<LeaseToken>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that a driver of this replica holds `token` until the guard drops.
    pub fn hold(&self, token: LeaseToken) -> Held<'_> {
        self.lock().insert(token);
        Held {
            leases: self,
            token,
        }
    }

    /// Renews the lease every third of its length; returns when it is lost, or may be
    /// lost before it could be renewed again. A failed renewal (the database is away) is
    /// retried once: the lease is still ours until its expiry, which is counted from
    /// before the last renewal that succeeded (or from the start here, after the claim).
    pub async fn keep(&self, pool: &PgPool, saga_id: SagaId, token: LeaseToken) -> LeaseLost {
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.duration / 3).await;
            let attempt = tokio::time::Instant::now();
            // Bounded: a renewal stuck on an unreachable database (up to the pool's
            // acquire timeout) must not outlast the lease it is renewing.
            let renewal = tokio::time::timeout(
                self.duration / 3,
                store::renew(pool, saga_id, token, self.duration),
            )
            .await
            .unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut));
            match renewal {
                Ok(true) => renewed = attempt,
                Ok(false) => return LeaseLost(saga_id),
                Err(error) if must_stop(renewed.elapsed(), self.duration) => {
                    tracing::warn!(%error, %saga_id, "cannot renew lease before it may expire: the driver stops (fenced by time)");
                    metrics::counter!("saga_lease_self_fenced_total").increment(1);
                    return LeaseLost(saga_id);
                }
                Err(error) => tracing::warn!(%error, "cannot renew lease; retrying"),
            }
        }
    }

    /// The tokens held now (read before stopping the drivers: they forget theirs as they
    /// exit).
    pub fn tokens(&self) -> Vec<LeaseToken> {
        self.lock().iter().copied().collect()
    }

    /// Waits until every driver of this replica let its token go (they were told to stop).
    pub async fn drained(&self) {
        loop {
            let let_go = self.let_go.notified();
            tokio::pin!(let_go);
            let_go.as_mut().enable();
            if self.lock().is_empty() {
                return;
            }
            let_go.await;
        }
    }

    /// Hands `tokens` back (on shutdown), so other replicas resume those sagas at once
    /// rather than after the leases expire.
    pub async fn release(pool: &PgPool, tokens: &[LeaseToken]) {
        match store::release(pool, tokens).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "released saga leases"),
            Err(error) => tracing::warn!(%error, "could not release leases; they will expire"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_stops_before_its_lease_could_expire_unrenewed() {
        let lease = Duration::from_secs(3);
        // The first renewal failed: one more try still lands before the expiry.
        assert!(!must_stop(Duration::from_secs(1), lease));
        // The second failed too (or hung for its third): the next would come too late.
        assert!(must_stop(Duration::from_secs(2), lease));
        assert!(must_stop(Duration::from_secs(7), lease));
    }
}
