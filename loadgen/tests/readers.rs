//! The read load of `loadgen run --watchers --listers` does what it says beside a run:
//! its watchers follow the run's checkouts to their end, its listers read pages.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{sync::atomic::Ordering, time::Duration};

use e2e::{Stack, StackOptions, clients::Clients};
use loadgen::{
    load::{self, LoadConfig, Mix},
    readers,
};

#[tokio::test]
async fn watchers_follow_the_runs_checkouts_and_listers_read_pages_beside_it() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let mut clients = Clients::of(&stack);
    let mut state = load::setup(&mut clients, "readers").await.unwrap();
    let readers = readers::spawn(&clients, 4, 2);
    let config = LoadConfig {
        progress: false,
        ..LoadConfig::closed_loop("readers", 4, None, Some(60), Mix::default())
    };
    let report = load::run(&clients, &config, &mut state).await.unwrap();
    assert_eq!(report.requests, 60, "{report:?}");
    // A stream opened on the last checkout may still be replaying it: give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = &readers.counts;
    assert!(
        counts.streams.load(Ordering::Relaxed) > 0,
        "{}",
        readers.render()
    );
    assert!(
        counts.events.load(Ordering::Relaxed) > 0,
        "{}",
        readers.render()
    );
    assert!(
        counts.pages.load(Ordering::Relaxed) > 0,
        "{}",
        readers.render()
    );
    assert_eq!(
        counts.refused.load(Ordering::Relaxed),
        0,
        "{}",
        readers.render()
    );
}
