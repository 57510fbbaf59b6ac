//! What the front door reads from a call's metadata besides the message: the caller's
//! deadline (`grpc-timeout`), fault specs to forward, and the trace context.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// How long PlaceOrder may wait: the caller's `grpc-timeout` less a margin to answer in
/// time, or `max_wait` without one. The margin (a fifth, at most 250 ms) covers the last
/// read and the reply on a busy machine: an answer that misses the deadline is lost to
/// the caller (it gets DEADLINE_EXCEEDED instead, see `platform::deadline`).
pub fn wait_budget(metadata: &MetadataMap, max_wait: Duration) -> Duration {
    let Some(deadline) = platform::deadline::caller_deadline(metadata.as_ref()) else {
        return max_wait;
    };
    let margin = (deadline / 5).min(Duration::from_millis(250));
    deadline.saturating_sub(margin).min(max_wait)
}

pub fn header(metadata: &MetadataMap, name: &str) -> String {
    metadata
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default()
}
