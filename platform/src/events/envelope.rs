//! Events as values: [`Event`] is an envelope whose payload is known to be set and to
//! agree with its type name, so handlers match on the payload without re-checking.

use bytes::Bytes;
use prost::Message;
use shop_proto::events::v1::{self as pb, envelope::Payload};
use uuid::Uuid;

use super::schema::{self, NoMajor, SchemaVersion};

/// The type of an event, as its subject and `Envelope.type` name it.
pub type EventKind = &'static str;

/// The type name of a payload (also the last token of its subject).
pub fn kind_of(payload: &Payload) -> EventKind {
    match payload {
        Payload::CheckoutRequested(_) => "CheckoutRequested",
        Payload::OrderPlaced(_) => "OrderPlaced",
        Payload::PaymentCaptured(_) => "PaymentCaptured",
        Payload::PaymentDeclined(_) => "PaymentDeclined",
        Payload::StockReserved(_) => "StockReserved",
        Payload::StockRejected(_) => "StockRejected",
        Payload::ShipmentCreated(_) => "ShipmentCreated",
        Payload::ShipmentRejected(_) => "ShipmentRejected",
        Payload::StockReleased(_) => "StockReleased",
        Payload::PaymentRefunded(_) => "PaymentRefunded",
        Payload::OrderConfirmed(_) => "OrderConfirmed",
        Payload::OrderCancelled(_) => "OrderCancelled",
    }
}

/// The checkout a payload carries forward (every event type has one).
pub fn checkout_of(payload: &Payload) -> Option<&pb::Checkout> {
    match payload {
        Payload::CheckoutRequested(e) => e.checkout.as_ref(),
        Payload::OrderPlaced(e) => e.checkout.as_ref(),
        Payload::PaymentCaptured(e) => e.checkout.as_ref(),
        Payload::PaymentDeclined(e) => e.checkout.as_ref(),
        Payload::StockReserved(e) => e.checkout.as_ref(),
        Payload::StockRejected(e) => e.checkout.as_ref(),
        Payload::ShipmentCreated(e) => e.checkout.as_ref(),
        Payload::ShipmentRejected(e) => e.checkout.as_ref(),
        Payload::StockReleased(e) => e.checkout.as_ref(),
        Payload::PaymentRefunded(e) => e.checkout.as_ref(),
        Payload::OrderConfirmed(e) => e.checkout.as_ref(),
        Payload::OrderCancelled(e) => e.checkout.as_ref(),
    }
}

/// The one producer that publishes a payload of this type. The broker lets each
/// certificate publish only under its own producer's subjects; this says which types a
/// producer's subjects may carry, so a service that publishes another's type under its
/// own name (a compromised payment-svc sending `OrderConfirmed`) is caught by the
/// consumer ([`Event::check_origin`]). Exhaustive: a new event type must name its
/// producer here.
pub fn producer_of(payload: &Payload) -> &'static str {
    match payload {
        Payload::CheckoutRequested(_) => "checkout",
        Payload::OrderPlaced(_) | Payload::OrderConfirmed(_) | Payload::OrderCancelled(_) => {
            "order"
        }
        Payload::PaymentCaptured(_) | Payload::PaymentDeclined(_) | Payload::PaymentRefunded(_) => {
            "payment"
        }
        Payload::StockReserved(_) | Payload::StockRejected(_) | Payload::StockReleased(_) => {
            "inventory"
        }
        Payload::ShipmentCreated(_) | Payload::ShipmentRejected(_) => "shipping",
    }
}

/// The subject an event of `producer` and `kind` is published under.
pub fn subject(producer: &str, kind: EventKind) -> String {
    format!("shop.events.{producer}.{kind}")
}

/// A readable event: an envelope with a payload whose type agrees with `type`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Uuid,
    /// The checkout the event belongs to.
    pub correlation_id: String,
    pub producer: String,
    /// The payload's schema version (1.0 when the envelope predates versions); a
    /// consumer acts only on the majors it knows ([`super::ConsumerSpec::check_version`]).
    pub version: SchemaVersion,
    pub payload: Payload,
    pub envelope: pb::Envelope,
}

/// Why a message is not a readable event (it is parked, never retried).
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("not an Envelope: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("event_id {0:?} is not a UUID")]
    EventId(String),
    #[error("the envelope has no payload")]
    NoPayload,
    #[error("type {declared:?} does not match the payload ({actual})")]
    TypeMismatch { declared: String, actual: EventKind },
    #[error("correlation_id is empty")]
    NoCorrelation,
    #[error(transparent)]
    Version(#[from] NoMajor),
}

impl Event {
    /// A new event of `producer`, caused by `cause` (`None` for the first of a checkout),
    /// carrying the current span's trace context and the version this build writes of
    /// its type.
    pub fn new(
        producer: &str,
        correlation_id: &str,
        cause: Option<&Event>,
        payload: Payload,
    ) -> Self {
        let id = Uuid::now_v7();
        let version = schema::written(&payload);
        let envelope = pb::Envelope {
            event_id: id.to_string(),
            r#type: kind_of(&payload).to_owned(),
            occurred_at: Some(crate::time::timestamp(chrono::Utc::now())),
            correlation_id: correlation_id.to_owned(),
            causation_id: cause.map(|c| c.id.to_string()).unwrap_or_default(),
            producer: producer.to_owned(),
            traceparent: crate::telemetry::current_traceparent(),
            schema_version: Some(version.wire()),
            payload: Some(payload.clone()),
        };
        Self {
            id,
            correlation_id: correlation_id.to_owned(),
            producer: producer.to_owned(),
            version,
            payload,
            envelope,
        }
    }

    /// The event's type name.
    pub fn kind(&self) -> EventKind {
        kind_of(&self.payload)
    }

    /// The checkout every event carries forward; an event without one cannot be handled
    /// (poison: it is parked).
    pub fn checkout(&self) -> Result<&pb::Checkout, super::HandlerError> {
        checkout_of(&self.payload).ok_or_else(|| {
            super::HandlerError::Poison(format!(
                "{}.checkout is required: the checkout is missing from the event",
                self.kind()
            ))
        })
    }

    /// The event `producer` writes in reaction to this one: same checkout, caused by it.
    pub fn follow_up(&self, producer: &str, payload: Payload) -> Self {
        Self::new(producer, &self.correlation_id, Some(self), payload)
    }

    /// The subject it is published under.
    pub fn subject(&self) -> String {
        subject(&self.producer, self.kind())
    }

    /// Whether this event may have come the way it did: `arrived_on` must be the subject
    /// its type's one producer publishes it under, and the envelope must name that
    /// producer. The broker guarantees the subject's producer is who sent it, so an event
    /// that passes came from the service that owns its type. Else the reason, for the
    /// dead letter.
    pub fn check_origin(&self, arrived_on: &str) -> Result<(), String> {
        let owner = producer_of(&self.payload);
        let expected = subject(owner, self.kind());
        if arrived_on != expected || self.producer != owner {
            return Err(format!(
                "a {} (envelope producer `{}`) arrived on {arrived_on}, but only `{owner}` \
                 publishes it, on {expected}: not acted on",
                self.kind(),
                self.producer
            ));
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        self.envelope.encode_to_vec()
    }

    /// Reads a message's bytes; anything that is not a whole, consistent envelope is
    /// [`Unreadable`]. The envelope is kept as it came (one without a version stays
    /// without), so what a consumer parks is what arrived.
    pub fn decode(bytes: &Bytes) -> Result<Self, Unreadable> {
        let envelope = pb::Envelope::decode(bytes.as_ref())?;
        let id = Uuid::try_parse(&envelope.event_id)
            .map_err(|_| Unreadable::EventId(envelope.event_id.clone()))?;
        let payload = envelope.payload.clone().ok_or(Unreadable::NoPayload)?;
        let actual = kind_of(&payload);
        if envelope.r#type != actual {
            return Err(Unreadable::TypeMismatch {
                declared: envelope.r#type.clone(),
                actual,
            });
        }
        if envelope.correlation_id.is_empty() {
            return Err(Unreadable::NoCorrelation);
        }
        let version = SchemaVersion::read(envelope.schema_version.as_ref())?;
        Ok(Self {
            id,
            correlation_id: envelope.correlation_id.clone(),
            producer: envelope.producer.clone(),
            version,
            payload,
            envelope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed() -> Payload {
        Payload::OrderPlaced(pb::OrderPlaced::default())
    }

    #[test]
    fn an_event_round_trips_and_names_its_subject_and_cause() {
        let first = Event::new(
            "checkout",
            "c-1",
            None,
            Payload::CheckoutRequested(Default::default()),
        );
        let next = Event::new("order", "c-1", Some(&first), placed());
        assert_eq!(next.subject(), "shop.events.order.OrderPlaced");
        assert_eq!(next.envelope.causation_id, first.id.to_string());
        let read = Event::decode(&Bytes::from(next.encode())).expect("readable");
        assert_eq!(read, next);
    }

    #[test]
    fn an_event_declares_the_version_its_type_is_written_in_and_an_old_one_reads_as_1() {
        let event = Event::new("order", "c-1", None, placed());
        assert_eq!(event.version, schema::written(&event.payload));
        assert_eq!(event.envelope.schema_version, Some(event.version.wire()));
        // Written before versions existed: no field on the wire.
        let mut old = event.envelope.clone();
        old.schema_version = None;
        let read = Event::decode(&Bytes::from(old.encode_to_vec())).expect("readable");
        assert_eq!(read.version, schema::FIRST);
        assert_eq!(read.encode(), old.encode_to_vec(), "kept as it came");
    }

    #[test]
    fn inconsistent_envelopes_are_unreadable() {
        let mut event = Event::new("order", "c-1", None, placed());
        event.envelope.r#type = "PaymentCaptured".into();
        assert!(matches!(
            Event::decode(&Bytes::from(event.encode())),
            Err(Unreadable::TypeMismatch { .. })
        ));
        event.envelope.r#type = "OrderPlaced".into();
        event.envelope.payload = None;
        assert!(matches!(
            Event::decode(&Bytes::from(event.encode())),
            Err(Unreadable::NoPayload)
        ));
        event.envelope.payload = Some(placed());
        event.envelope.schema_version = Some(pb::SchemaVersion { major: 0, minor: 2 });
        assert!(matches!(
            Event::decode(&Bytes::from(event.encode())),
            Err(Unreadable::Version(_))
        ));
        assert!(Event::decode(&Bytes::from_static(b"\xff\xff")).is_err());
    }

    #[test]
    fn an_event_is_acted_on_only_from_the_producer_that_owns_its_type() {
        let genuine = Event::new("order", "c-1", None, placed());
        assert_eq!(
            genuine.check_origin("shop.events.order.OrderPlaced"),
            Ok(())
        );
        // The broker let payment-svc publish under its own name; the type is not its.
        let smuggled = genuine.check_origin("shop.events.payment.OrderPlaced");
        assert!(smuggled.is_err_and(|reason| reason.contains("only `order` publishes")));
        let renamed = Event::new("payment", "c-1", None, placed());
        assert!(
            renamed
                .check_origin("shop.events.payment.OrderPlaced")
                .is_err()
        );
        assert!(
            renamed
                .check_origin("shop.events.order.OrderPlaced")
                .is_err()
        );
    }
}
