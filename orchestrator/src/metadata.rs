//! What the front door reads from a call's metadata besides the message: the caller's
//! deadline (`grpc-timeout`), fault specs to forward, and the trace context.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// How long PlaceOrder may wait: the caller's `grpc-timeout` less a margin to answer in
/// time, or `max_wait` without one. The margin (a fifth, at most 250 ms) covers the last
/// read and the reply on a busy machine: an answer that misses the deadline is lost to
/// the caller (tonic's server answers CANCELLED instead).
pub fn wait_budget(metadata: &MetadataMap, max_wait: Duration) -> Duration {
    let Some(deadline) = header_opt(metadata, "grpc-timeout").and_then(|v| parse_grpc_timeout(&v))
    else {
        return max_wait;
    };
    let margin = (deadline / 5).min(Duration::from_millis(250));
    deadline.saturating_sub(margin).min(max_wait)
}

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

fn header_opt(metadata: &MetadataMap, name: &str) -> Option<String> {
    metadata
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub fn header(metadata: &MetadataMap, name: &str) -> String {
    header_opt(metadata, name).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
    }
}
