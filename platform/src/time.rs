//! Conversions between database timestamps and `google.protobuf.Timestamp`.

use chrono::{DateTime, Utc};

/// The protobuf form of a database timestamp.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}
