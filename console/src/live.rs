//! `GET /checkouts/{id}/events`: the checkout's timeline pushed to the page as
//! server-sent events while it runs, fed by WatchCheckout.
//!
//! Each event carries the [`live_region`] rendered from GetCheckout, not a delta: the
//! page swaps it in whole, so the live view and the page without JavaScript are one
//! rendering, and a page that connects late (WatchCheckout replays the history first)
//! jumps straight to the present instead of replaying the past on screen. Events that
//! arrive together are answered with one rendering.

use std::{convert::Infallible, time::Duration};

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    session::Session,
    shop::Shop,
    views::{
        checkout::{TraceLinks, live_region},
        labels,
    },
};

/// The SSE event names the page's script listens for.
pub const TIMELINE: &str = "timeline";
/// The checkout ended: the script closes the stream instead of letting the browser
/// reconnect.
pub const END: &str = "end";
/// The stream failed (the checkout is unknown, or the shop went away); the data says why.
pub const FAILED: &str = "failed";

/// The response of `GET /checkouts/{id}/events`, following the checkout as `who` sees it.
pub fn events(
    shop: Shop,
    traces: TraceLinks,
    who: Session,
    checkout_id: String,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let end = match follow(&shop, &traces, &who, &checkout_id, &tx).await {
            Ok(()) => Event::default().event(END).data("ended"),
            Err(why) => Event::default().event(FAILED).data(why),
        };
        let _ = tx.send(Ok(end)).await;
    });
    Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Sends one rendering per batch of WatchCheckout events until the checkout ends or
/// the page goes away (dropping the stream ends the watch too).
async fn follow(
    shop: &Shop,
    traces: &TraceLinks,
    who: &Session,
    checkout_id: &str,
    tx: &mpsc::Sender<Result<Event, Infallible>>,
) -> Result<(), String> {
    let mut watch = shop.watch(who, checkout_id).await.map_err(describe)?;
    loop {
        // A page that went away ends the watch at once, not at the checkout's next event
        // (which may be long in coming for a stalled one).
        let first = tokio::select! {
            next = watch.next() => next,
            () = tx.closed() => return Ok(()),
        };
        let Some(first) = first else {
            return Ok(());
        };
        first.map_err(describe)?;
        // Whatever else has already arrived is covered by the same rendering.
        while let Some(Some(more)) = watch.next().now_or_never() {
            more.map_err(describe)?;
        }
        let checkout = shop.get(who, checkout_id).await.map_err(describe)?;
        let event = Event::default()
            .event(TIMELINE)
            .data(live_region(&checkout, traces).into_string());
        if tx.send(Ok(event)).await.is_err() {
            return Ok(());
        }
        if labels::is_final(checkout.status) {
            return Ok(());
        }
    }
}

/// A gRPC status as the page shows it: `NotFound: no such checkout`.
pub fn describe(status: tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}
