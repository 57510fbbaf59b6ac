//! Read load beside a run (`loadgen run --watchers N --listers M`): what a console full of
//! live pages and people paging through lists costs the checkouts. Each watcher follows
//! the newest checkout with WatchCheckout until it ends, then the next newest; each
//! lister reads the newest page of 100 checkouts again and again. Their cost is the
//! run's latency beside them, measured against a run without them (docs/BENCHMARKS.md).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use e2e::clients::Clients;
use shop_proto::checkout::v1 as pb;
use tonic::Code;

/// What the readers did.
#[derive(Debug, Default)]
pub struct Counts {
    pub streams: AtomicU64,
    pub refused: AtomicU64,
    pub events: AtomicU64,
    pub pages: AtomicU64,
}

/// The running readers; stopped when dropped.
#[derive(Debug)]
pub struct Readers {
    pub counts: Arc<Counts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Readers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Readers {
    /// One line for the report.
    pub fn render(&self) -> String {
        let c = &self.counts;
        format!(
            "readers: {} watch streams opened ({} refused), {} events watched, {} list pages read\n",
            c.streams.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
            c.events.load(Ordering::Relaxed),
            c.pages.load(Ordering::Relaxed),
        )
    }
}

/// Starts `watchers` watchers and `listers` listers on `clients`' front door.
pub fn spawn(clients: &Clients, watchers: usize, listers: usize) -> Readers {
    let counts = Arc::new(Counts::default());
    let mut tasks = Vec::with_capacity(watchers + listers);
    for _ in 0..watchers {
        let (clients, counts) = (clients.clone(), counts.clone());
        tasks.push(tokio::spawn(
            async move { watch_forever(clients, counts).await },
        ));
    }
    for _ in 0..listers {
        let (clients, counts) = (clients.clone(), counts.clone());
        tasks.push(tokio::spawn(
            async move { list_forever(clients, counts).await },
        ));
    }
    Readers { counts, tasks }
}

fn newest(page_size: i32) -> pb::ListCheckoutsRequest {
    pb::ListCheckoutsRequest {
        page_size,
        ..pb::ListCheckoutsRequest::default()
    }
}

async fn watch_forever(clients: Clients, counts: Arc<Counts>) {
    let mut front = clients.checkout;
    loop {
        let newest = match front.list_checkouts(newest(1)).await {
            Ok(listed) => listed.into_inner().checkouts.into_iter().next(),
            Err(_) => None,
        };
        let Some(checkout) = newest else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let watched = front
            .watch_checkout(pb::WatchCheckoutRequest {
                checkout_id: checkout.checkout_id,
            })
            .await;
        match watched {
            Ok(stream) => {
                counts.streams.fetch_add(1, Ordering::Relaxed);
                let mut stream = stream.into_inner();
                while let Ok(Some(_)) = stream.message().await {
                    counts.events.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                counts.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn list_forever(clients: Clients, counts: Arc<Counts>) {
    let mut front = clients.checkout;
    loop {
        match front.list_checkouts(newest(100)).await {
            Ok(_) => {
                counts.pages.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
