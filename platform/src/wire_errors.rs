//! The codes of requests that never reach a handler. tonic answers a request body that is
//! not the method's protobuf message with INTERNAL, and one over the size limit with
//! OUT_OF_RANGE; both are the caller's fault, so the shop answers INVALID_ARGUMENT and
//! RESOURCE_EXHAUSTED (gRPC's convention for a message over the limit), the codes
//! docs/CONTRACT.md promises, with tonic's message kept.

use tonic::{Code, Status};

/// What tonic's decoder says when the bytes are not the message.
const NOT_THE_MESSAGE: &str = "failed to decode Protobuf message";
/// What tonic's decoder says when a message is over `max_decoding_message_size`.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// The code the shop answers instead of tonic's, for an error tonic made itself.
pub fn corrected(status: &Status) -> Option<Code> {
    match status.code() {
        Code::Internal if status.message().starts_with(NOT_THE_MESSAGE) => {
            Some(Code::InvalidArgument)
        }
        Code::OutOfRange if status.message().starts_with(TOO_LARGE) => {
            Some(Code::ResourceExhausted)
        }
        _ => None,
    }
}

/// Rewrites the status of a trailers-only answer (where a request that failed to decode
/// ends) as [`corrected`] says; the server maps every answer through it.
pub fn correct<B>(mut response: http::Response<B>) -> http::Response<B> {
    if let Some(status) = Status::from_header_map(response.headers())
        && let Some(code) = corrected(&status)
    {
        let status = Status::new(code, status.message());
        if let Err(error) = status.add_header(response.headers_mut()) {
            tracing::warn!(%error, "cannot rewrite a decode error's status");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tonic_decode_errors_change_code() {
        let garbage = Status::internal("failed to decode Protobuf message: invalid wire type");
        assert_eq!(corrected(&garbage), Some(Code::InvalidArgument));
        let large = Status::out_of_range(
            "Error, decoded message length too large: found 300000 bytes, the limit is: 262144 bytes",
        );
        assert_eq!(corrected(&large), Some(Code::ResourceExhausted));
        assert_eq!(corrected(&Status::internal("internal error")), None);
        assert_eq!(corrected(&Status::out_of_range("page past the end")), None);
    }
}
