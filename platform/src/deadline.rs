//! The caller's deadline (`grpc-timeout`), answered as gRPC says: DEADLINE_EXCEEDED.
//!
//! tonic's server honours `grpc-timeout` itself, but answers a call that outlives it with
//! CANCELLED "Timeout expired", which tells the caller nothing true (nobody cancelled
//! anything). [`DeadlineLayer`] sits just inside tonic's own timeout and ends the call a
//! millisecond before it with DEADLINE_EXCEEDED and the deadline that passed. Ending a
//! call drops its handler: work a handler must finish whatever the caller does (a
//! checkout's saga) runs in a task of its own.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http::HeaderMap;
use tonic::{Status, body::Body};
use tower::{Layer, Service};

/// How much sooner than tonic's timer this layer's fires: tokio's timers tick in whole
/// milliseconds, so one tick earlier always wins the race.
const AHEAD_OF_TONIC: Duration = Duration::from_millis(1);

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The deadline a call's headers carry, if any (an unparsable one counts as none, as
/// tonic's own timeout treats it).
pub fn caller_deadline(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// Answers DEADLINE_EXCEEDED when the caller's deadline passes (see the module's doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner }
    }
}

/// See [`DeadlineLayer`].
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let deadline = caller_deadline(request.headers());
        let call = self.inner.call(request);
        let Some(deadline) = deadline else {
            return Box::pin(call);
        };
        Box::pin(async move {
            let limit = deadline.saturating_sub(AHEAD_OF_TONIC);
            match tokio::time::timeout(limit, call).await {
                Ok(answered) => answered,
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "the caller's deadline of {deadline:?} passed before the call finished"
                ))
                .into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2000u"), Some(Duration::from_millis(2)));
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
    }
}
