//! How a failed downstream call is classified, in one place: the retry policy, the
//! circuit breaker and the saga's steps all ask the same questions of an error.
//!
//! - transient (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, …, a local timeout): worth another
//!   attempt, and counted by the breaker;
//! - a refusal (`INVALID_ARGUMENT`, `NOT_FOUND`, …): the service said no, and asking again
//!   will not change it;
//! - the breaker's own fail-fast error: neither retried nor counted.

use tonic::Code;
use tower::BoxError;

/// The error of a call refused because the breaker is open.
#[derive(Debug, thiserror::Error)]
#[error(
    "circuit breaker open until past the step's deadline: the downstream failed repeatedly, failing fast"
)]
pub struct BreakerOpen;

/// Codes that say "try again": the call did not take effect, or may have but is
/// idempotent. `CANCELLED` is what a stock tonic server answers when the grpc-timeout we
/// sent expires (ours answer DEADLINE_EXCEEDED, see `platform::deadline`), so it is a
/// timeout too.
pub fn retryable_code(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled
    )
}

/// Whether a failed attempt is transient, so worth retrying and counted by the breaker.
/// An open breaker is not: it exists to fail fast.
pub fn retryable(error: &BoxError) -> bool {
    if let Some(status) = error.downcast_ref::<tonic::Status>() {
        retryable_code(status.code())
    } else if error.is::<tower::timeout::error::Elapsed>() {
        true
    } else {
        !error.is::<BreakerOpen>()
    }
}

/// Codes that mean "no, and asking again will not change it": nothing took effect.
pub fn is_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::OutOfRange
    )
}

/// A failed call's message and the gRPC code it stands for: a local timeout is
/// `DEADLINE_EXCEEDED`, anything else that is not a status (a connection error, an open
/// breaker) is `UNAVAILABLE`.
pub fn describe(error: &BoxError) -> (String, Code) {
    if let Some(status) = error.downcast_ref::<tonic::Status>() {
        (status.message().to_owned(), status.code())
    } else if error.is::<tower::timeout::error::Elapsed>() {
        ("timed out".to_owned(), Code::DeadlineExceeded)
    } else {
        (error.to_string(), Code::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_that_are_not_statuses_get_a_code() {
        let elapsed: BoxError = Box::new(tower::timeout::error::Elapsed::new());
        assert_eq!(describe(&elapsed).1, Code::DeadlineExceeded);
        let open: BoxError = Box::new(BreakerOpen);
        assert_eq!(describe(&open).1, Code::Unavailable);
        assert!(!retryable(&open), "an open breaker fails fast");
        assert!(is_refusal(Code::AlreadyExists));
        assert!(!is_refusal(Code::Unavailable));
    }
}
