//! The change feed: wakes whoever waits on a saga in this replica (a PlaceOrder waiting
//! for its end, a WatchCheckout stream) when the saga changes, from one source per
//! replica instead of a poll per waiter. Each waiter registers the saga it follows
//! ([`Feed::watch`]) and is woken only by that saga's changes.
//!
//! Where the changes come from:
//! - **this replica's drivers**: the engine announces each write as it commits
//!   ([`Feed::changed`], with the version written);
//! - **every replica's tracker** (choreographed checkouts): `NOTIFY saga_changed` in the
//!   event's transaction, forwarded by `tracker::forward_changes` on one LISTEN
//!   connection per replica;
//! - **other replicas' drivers** (an orchestrated checkout placed or resumed elsewhere,
//!   watched here): [`poll_watched`], one query every `WATCH_POLL_INTERVAL` for the
//!   versions of every orchestrated saga watched here, and none while nothing is.
//!
//! Why drivers do not `NOTIFY` too: a notifying commit takes a database-wide lock that
//! serialises every notifying commit, and it would be paid by every step of every
//! checkout whether anyone watches or not. The poll costs one indexed read per interval
//! per replica however many streams are open, bounds the delay for the rare cross-replica
//! watcher to that interval, and reads the versions themselves, so it misses nothing
//! that a lost notification would.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use sqlx::PgPool;
use tokio::sync::watch;

use crate::{ids::SagaId, store};

/// The sagas watched in this replica, each with the channel its watchers wait on.
#[derive(Debug, Default)]
pub struct Feed {
    watched: Mutex<HashMap<SagaId, Watched>>,
}

#[derive(Debug)]
struct Watched {
    wake: watch::Sender<()>,
    /// The newest version a local write announced or the poll read; `None` until then.
    version: Option<i64>,
}

impl Feed {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Starts following `saga_id`. Register before the first read of the saga: a change
    /// committed after registering wakes the watch even if it lands before the read.
    pub fn watch(self: &Arc<Self>, saga_id: SagaId) -> Watch {
        let mut watched = self.lock();
        let entry = watched.entry(saga_id).or_insert_with(|| Watched {
            wake: watch::channel(()).0,
            version: None,
        });
        Watch {
            feed: self.clone(),
            saga_id,
            changes: entry.wake.subscribe(),
        }
    }

    /// Wakes the watchers of `saga_id`, if it has any. `version`: the version a local
    /// write left, so the poll does not announce it a second time.
    pub fn changed(&self, saga_id: SagaId, version: Option<i64>) {
        let mut watched = self.lock();
        if let Some(entry) = watched.get_mut(&saga_id) {
            if let Some(version) = version {
                entry.version = entry.version.max(Some(version));
            }
            entry.wake.send_replace(());
        }
    }

    /// Wakes every watcher: after notifications may have been missed (the LISTEN
    /// connection was lost), each reads its saga once again.
    pub fn wake_all(&self) {
        for entry in self.lock().values() {
            entry.wake.send_replace(());
        }
    }

    /// Every saga watched now.
    fn watched(&self) -> Vec<SagaId> {
        self.lock().keys().copied().collect()
    }

    /// Wakes the watchers of each saga whose version moved past the one known (or that
    /// is seen for the first time: the poll cannot tell whether its watchers read it
    /// before or after that version, so they read it once more).
    fn seen(&self, versions: &[(SagaId, i64)]) {
        let mut watched = self.lock();
        for (saga_id, version) in versions {
            if let Some(entry) = watched.get_mut(saga_id)
                && entry.version < Some(*version)
            {
                entry.version = Some(*version);
                entry.wake.send_replace(());
            }
        }
    }

    /// Every change is one statement under the lock, so a panicking holder leaves the
    /// map consistent.
    fn lock(&self) -> MutexGuard<'_, HashMap<SagaId, Watched>> {
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One waiter's registration for one saga; dropping it unregisters.
#[derive(Debug)]
pub struct Watch {
    feed: Arc<Feed>,
    saga_id: SagaId,
    changes: watch::Receiver<()>,
}

impl Watch {
    /// Marks every change so far as seen. Call it just before reading the saga: then
    /// [`Watch::changed`] completes for any change the read may have missed.
    pub fn mark_seen(&mut self) {
        self.changes.mark_unchanged();
    }

    /// Completes once the saga changed since [`Watch::mark_seen`].
    pub async fn changed(&mut self) {
        // The sender lives in the feed as long as this watch does.
        if self.changes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watched = self.feed.lock();
        // Registrations and drops happen under the lock: one receiver left is this one.
        if watched
            .get(&self.saga_id)
            .is_some_and(|entry| entry.wake.receiver_count() <= 1)
        {
            watched.remove(&self.saga_id);
        }
    }
}

/// Reads, every `every`, the versions of the orchestrated sagas watched here, and wakes
/// the watchers of those another replica's driver moved (see the module's comment).
/// Choreographed sagas are left to the tracker's notifications.
pub async fn poll_watched(feed: Arc<Feed>, pool: PgPool, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let watched = feed.watched();
        if watched.is_empty() {
            continue;
        }
        match store::orchestrated_versions(&pool, &watched).await {
            Ok(versions) => {
                failing = false;
                feed.seen(&versions);
            }
            // Logged once per outage, not every interval.
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "cannot read watched sagas' versions; watchers of sagas driven by other replicas wait");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;

    fn id() -> SagaId {
        SagaId::generate()
    }

    #[tokio::test]
    async fn a_watch_wakes_on_its_sagas_change_only() {
        let feed = Feed::new();
        let (mine, other) = (id(), id());
        let mut watch = feed.watch(mine);
        watch.mark_seen();
        feed.changed(other, None);
        assert!(watch.changed().now_or_never().is_none());
        feed.changed(mine, Some(3));
        assert!(watch.changed().now_or_never().is_some());
    }

    #[tokio::test]
    async fn a_change_before_the_wait_is_not_lost() {
        let feed = Feed::new();
        let saga = id();
        let mut watch = feed.watch(saga);
        watch.mark_seen();
        // Committed while the watcher was reading.
        feed.changed(saga, None);
        tokio::time::timeout(Duration::from_secs(1), watch.changed())
            .await
            .expect("woken by a change made before it waited");
    }

    #[tokio::test]
    async fn the_poll_wakes_for_newer_versions_only() {
        let feed = Feed::new();
        let saga = id();
        let mut watch = feed.watch(saga);
        feed.changed(saga, Some(4));
        watch.mark_seen();
        // A local write announced version 4 already: reading it again wakes nobody.
        feed.seen(&[(saga, 4)]);
        assert!(watch.changed().now_or_never().is_none());
        feed.seen(&[(saga, 5)]);
        assert!(watch.changed().now_or_never().is_some());
    }

    #[test]
    fn the_last_watch_dropped_unregisters_its_saga() {
        let feed = Feed::new();
        let saga = id();
        let first = feed.watch(saga);
        let second = feed.watch(saga);
        drop(first);
        assert_eq!(feed.watched(), vec![saga]);
        drop(second);
        assert!(feed.watched().is_empty());
    }
}
