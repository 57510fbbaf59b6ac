//! The leases of one replica: which saga claims it holds, keeping them alive while a
//! driver runs, and handing them back on shutdown.
//!
//! A lease is a token on the saga row with an expiry. Each claim gets a fresh token and
//! every write is fenced by it (see `store`), so losing a lease (a pause, a partition,
//! another claim) stops a driver's writes at once; renewing it every third of its length
//! keeps a healthy driver's saga its own.

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

    /// Renews the lease every third of its length; returns when it is lost. A failed
    /// renewal (the database is briefly away) is retried: the lease may still be ours.
    pub async fn keep(&self, pool: &PgPool, saga_id: SagaId, token: LeaseToken) -> LeaseLost {
        loop {
            tokio::time::sleep(self.duration / 3).await;
            match store::renew(pool, saga_id, token, self.duration).await {
                Ok(true) => {}
                Ok(false) => return LeaseLost(saga_id),
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
