//! Schema versions of events: what an envelope's `schema_version` says, which version
//! this build writes of each event type, and whether a consumer may act on an event.
//!
//! The version is **per event type**, not one for the whole envelope: a changed meaning
//! of `OrderPlaced` must stop the consumers that do not know it from acting on
//! `OrderPlaced`, not from acting on every other event too. The envelope's own fields
//! change only compatibly (proto3's rules, held by `buf breaking`), so they need none.
//!
//! - A **minor** is a compatible change (a field added): every consumer reads every
//!   minor, ignoring fields it does not know, so a consumer never checks it.
//! - A **major** is a changed meaning under the same name: a consumer acts only on the
//!   majors it knows ([`ConsumerSpec::known_major`](super::ConsumerSpec)), and parks any
//!   other, so an old replica never acts on a new meaning as if it were the old one
//!   (docs/COMPARISON.md found that hazard while adding a fraud check).

use std::fmt;

use shop_proto::events::v1::{self as pb, envelope::Payload};

/// A payload's schema version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaVersion {
    /// Changes when the meaning does; 1 or more.
    pub major: u32,
    /// Changes when a field is added.
    pub minor: u32,
}

/// The first version of every event type, and what an envelope without
/// `schema_version` is read as: it was written before versions existed, when every type
/// had the meaning its 1.0 still has.
pub const FIRST: SchemaVersion = SchemaVersion { major: 1, minor: 0 };

/// Why an envelope's version cannot be read: it declares major 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("schema_version 0.{minor}: a major starts at 1")]
pub struct NoMajor {
    pub minor: u32,
}

impl SchemaVersion {
    /// The version an envelope declares: [`FIRST`] when it declares none (written before
    /// versions existed). A declared major of 0 is no version at all: a producer that
    /// sets the field must set it whole, and guessing 1 could act on a meaning the
    /// producer did not mean.
    pub fn read(wire: Option<&pb::SchemaVersion>) -> Result<Self, NoMajor> {
        match wire {
            None => Ok(FIRST),
            Some(&pb::SchemaVersion { major: 0, minor }) => Err(NoMajor { minor }),
            Some(&pb::SchemaVersion { major, minor }) => Ok(Self { major, minor }),
        }
    }

    /// As the envelope declares it.
    pub fn wire(self) -> pb::SchemaVersion {
        pb::SchemaVersion {
            major: self.major,
            minor: self.minor,
        }
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version of each event type this build writes. Exhaustive: a new event type
/// starts at [`FIRST`] here. Bump a minor when a field is added; bump the major only in
/// a release whose consumers of that type all know the new meaning, after a release that
/// taught them (docs/OPERATIONS.md, "A changed meaning").
pub fn written(payload: &Payload) -> SchemaVersion {
    match payload {
        Payload::CheckoutRequested(_)
        | Payload::OrderPlaced(_)
        | Payload::PaymentCaptured(_)
        | Payload::PaymentDeclined(_)
        | Payload::StockReserved(_)
        | Payload::StockRejected(_)
        | Payload::ShipmentCreated(_)
        | Payload::ShipmentRejected(_)
        | Payload::StockReleased(_)
        | Payload::PaymentRefunded(_)
        | Payload::OrderConfirmed(_)
        | Payload::OrderCancelled(_) => FIRST,
    }
}

/// The highest major of a type that a consumer of this build knows: the one it writes.
/// Every consumer lives in this workspace, so the change that bumps a major in
/// [`written`] is the change that teaches its consumers the new meaning; what a major
/// protects against is a consumer of an *older* build, which does not know it.
pub fn known_by_this_build(payload: &Payload) -> u32 {
    written(payload).major
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_without_a_version_reads_as_the_first() {
        assert_eq!(SchemaVersion::read(None), Ok(FIRST));
        let declared = pb::SchemaVersion { major: 2, minor: 3 };
        let read = SchemaVersion::read(Some(&declared)).expect("a version");
        assert_eq!(read.to_string(), "2.3");
        assert_eq!(read.wire(), declared);
        assert!(SchemaVersion::read(Some(&pb::SchemaVersion { major: 0, minor: 1 })).is_err());
    }

    #[test]
    fn this_build_knows_what_it_writes() {
        let placed = Payload::OrderPlaced(pb::OrderPlaced::default());
        assert_eq!(known_by_this_build(&placed), written(&placed).major);
        assert_eq!(written(&placed), FIRST);
    }
}
