//! Stopping a long run early: SIGINT or SIGTERM stops the load and the checker where they
//! are, so the command prints what it made and checked so far (marked partial) instead of
//! dying with nothing, as a chaos run cut off by an outer time limit used to.

use std::sync::Arc;

use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
};

/// A flag every long loop watches; cheap to clone, set once.
#[derive(Debug, Clone)]
pub struct Stop(Arc<watch::Sender<bool>>);

impl Default for Stop {
    fn default() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }
}

impl Stop {
    /// A flag set by the first SIGINT or SIGTERM this process receives.
    pub fn on_signals() -> std::io::Result<Self> {
        let stop = Self::default();
        let (mut interrupt, mut terminate) = (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        );
        let flag = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            eprintln!("\ninterrupted: stopping, then reporting what was done so far");
            flag.stop();
        });
        Ok(stop)
    }

    /// Sets the flag.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the flag is set (at once if it already is).
    pub async fn stopped(&self) {
        let mut seen = self.0.subscribe();
        // The sender lives as long as `self`, so this only returns once the flag is set.
        let _ = seen.wait_for(|stopped| *stopped).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stopped_resolves_once_set_and_after() {
        let stop = Stop::default();
        assert!(!stop.is_stopped());
        let waiter = tokio::spawn({
            let stop = stop.clone();
            async move { stop.stopped().await }
        });
        stop.clone().stop();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert!(stop.is_stopped());
        stop.stopped().await;
    }
}
