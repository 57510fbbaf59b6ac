//! The one error type API handlers return, and its mapping to `tonic::Status`.
//!
//! Every variant carries the rich details (`google.rpc.*` via tonic-types) a client needs
//! to act without parsing messages: `BadRequest` field violations, `ErrorInfo` with a
//! machine-readable reason, `ResourceInfo` for what was not found.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

pub use crate::reason::{ERROR_DOMAIN, Reason};

/// What a tonic handler returns.
pub type Reply<T> = Result<tonic::Response<T>, Status>;

/// Turns the result of an API method into a tonic reply.
pub fn reply<T>(result: Result<T, ApiError>) -> Reply<T> {
    result.map(tonic::Response::new).map_err(Status::from)
}

/// Errors that reach a gRPC caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request breaks a documented limit; nothing changed.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),

    /// An id or sku the caller named does not exist.
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },

    /// The request is well-formed but the current state forbids it.
    #[error("{message}")]
    FailedPrecondition { reason: Reason, message: String },

    /// An idempotency key was reused with a different request.
    #[error("idempotency key {key} was already used with a different request")]
    KeyReused { key: String },

    /// The caller is known but may not do this (a customer acting for another, a
    /// customer asking for an operator's call).
    #[error("{0}")]
    PermissionDenied(String),

    /// A service this one depends on could not be reached; the caller may retry.
    #[error("{0} is unavailable, try again")]
    DependencyUnavailable(String),

    /// The database could not be reached; the caller may retry.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),

    /// Anything else: a bug or corrupted data. Logged where it is turned into a status.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Most field violations one error names: a request with a hundred bad lines is told about
/// the first ones and how many more there are, in a few kilobytes of trailers rather than
/// a hundred (some clients refuse headers that large).
pub const MAX_VIOLATIONS: usize = 20;

fn describe(violations: &[FieldViolation]) -> String {
    let mut text = violations
        .iter()
        .take(MAX_VIOLATIONS)
        .map(|v| format!("{} {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    let more = violations.len().saturating_sub(MAX_VIOLATIONS);
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text
}

impl ApiError {
    /// Shorthand for a precondition failure with a machine-readable reason.
    pub fn precondition(reason: Reason, message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }

    /// Shorthand for an unknown resource.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// Shorthand for a single bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

/// `conflict()` when `error` is a unique-constraint violation (a concurrent duplicate
/// that a constraint caught), else the usual mapping.
pub fn unique_violation_as(error: sqlx::Error, conflict: impl FnOnce() -> ApiError) -> ApiError {
    if crate::db::is_unique_violation(&error) {
        conflict()
    } else {
        error.into()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => Self::Unavailable(error),
            sqlx::Error::Database(ref db)
                if db.code().is_some_and(|c| {
                    // serialization failure, deadlock, connection failures, admin shutdown
                    c == "40001" || c == "40P01" || c.starts_with("08") || c.starts_with("57P")
                }) =>
            {
                Self::Unavailable(error)
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<prost::DecodeError> for ApiError {
    fn from(error: prost::DecodeError) -> Self {
        Self::Internal(error.into())
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let message = error.to_string();
        match error {
            ApiError::InvalidArgument(mut violations) => {
                violations.truncate(MAX_VIOLATIONS);
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            ApiError::NotFound { kind, id } => Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_resource_info(kind, id, "", "not found"),
            ),
            ApiError::FailedPrecondition { reason, .. } => Status::with_error_details(
                Code::FailedPrecondition,
                message,
                ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new()),
            ),
            ApiError::KeyReused { .. } => Status::with_error_details(
                Code::AlreadyExists,
                message,
                ErrorDetails::with_error_info(
                    Reason::IdempotencyKeyReused.as_str(),
                    ERROR_DOMAIN,
                    HashMap::new(),
                ),
            ),
            ApiError::PermissionDenied(_) => Status::permission_denied(message),
            ApiError::DependencyUnavailable(_) => Status::unavailable(message),
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Status::unavailable(message)
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                Status::internal(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_field_violation() {
        let status = Status::from(ApiError::InvalidArgument(vec![
            FieldViolation::new("sku", "must not be empty"),
            FieldViolation::new("items[1].quantity", "must be between 1 and 1000"),
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<String> = status
            .get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["sku", "items[1].quantity"]);
    }

    #[test]
    fn a_hundred_violations_answer_the_first_twenty_and_a_count() {
        let violations = (0..100)
            .map(|i| FieldViolation::new(format!("items[{i}].sku"), "must not be empty"))
            .collect();
        let status = Status::from(ApiError::InvalidArgument(violations));
        let named = status
            .get_details_bad_request()
            .map_or(0, |b| b.field_violations.len());
        assert_eq!(named, MAX_VIOLATIONS);
        assert!(
            status.message().ends_with("; and 80 more"),
            "{}",
            status.message()
        );
        assert!(
            status.details().len() < 2048,
            "{} bytes",
            status.details().len()
        );
    }

    #[test]
    fn precondition_carries_its_reason() {
        let status = Status::from(ApiError::precondition(
            Reason::OutOfStock,
            "not enough units",
        ));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.get_details_error_info().map(|i| i.reason),
            Some("OUT_OF_STOCK".to_owned())
        );
    }

    #[test]
    fn pool_timeouts_are_retryable_unavailable() {
        let status = Status::from(ApiError::from(sqlx::Error::PoolTimedOut));
        assert_eq!(status.code(), Code::Unavailable);
    }
}
