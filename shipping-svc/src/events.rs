//! shipping-svc's part in the choreographed checkout (see `shop/events/v1/events.proto`):
//! `StockReserved` -> create the shipment to the checkout's address -> `ShipmentCreated`,
//! or `ShipmentRejected` (`undeliverable_address`) with nothing created.
//!
//! The work is [`crate::shipments::create`], the same code the CreateShipment RPC runs.
//! The event is handled in the consumer's transaction and its follow-up is written to
//! the outbox in that same transaction, so the shipment and its announcement commit
//! together; the inbox makes a redelivery change nothing.

use platform::reason::Reason;
use platform::{
    ApiError,
    events::{ConsumerSpec, Event, Handler, HandlerError, Participant, envelope::kind_of, outbox},
    validate::Violations,
};
use shop_proto::common::v1::Address;
use shop_proto::events::v1::{self as pb, envelope::Payload};
use shop_proto::reason;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::shipments;

/// The durable consumer: shipping-svc reacts to reserved stock only (`StockReserved`),
/// from its role in `platform::events::roles`, which the broker's authorization is made
/// from too.
pub fn consumer() -> ConsumerSpec {
    platform::events::roles::SHIPPING_SVC.consumer()
}

/// `ServiceSpec::events`: the consumer and the handler the service's events task runs
/// (beside the outbox relay), and that `EventAdminService` retries dead letters with.
pub fn participant(producer: &'static str) -> Participant {
    Participant::new(consumer(), ShippingHandler { producer })
}

/// Reacts to the checkout's events; all state is in the transaction it is handed.
#[derive(Debug, Clone, Copy)]
pub struct ShippingHandler {
    /// The producer name of the events it emits (`shipping`, from the service's name).
    pub producer: &'static str,
}

impl Handler for ShippingHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandlerError> {
        match &event.payload {
            Payload::StockReserved(_) => stock_reserved(tx, self.producer, event).await,
            // Each subject has a consumer of its own, so anything else was misrouted:
            // a person should see it.
            other => Err(HandlerError::Poison(format!(
                "{} is not an event shipping-svc reacts to",
                kind_of(other)
            ))),
        }
    }
}

/// Ships the checkout to its address. An address no carrier serves is the checkout's
/// outcome, not an error: `create` refuses before it writes anything, so committing the
/// `ShipmentRejected` commits no shipment.
async fn stock_reserved(
    tx: &mut PgConnection,
    producer: &str,
    event: &Event,
) -> Result<(), HandlerError> {
    let checkout = event.checkout()?;
    let (order_id, to) = shipment_of(checkout).map_err(|e| HandlerError::of(event, e))?;
    let follow_up = match shipments::create(tx, order_id, to).await {
        Ok(row) => Payload::ShipmentCreated(pb::ShipmentCreated {
            checkout: Some(checkout.clone()),
            tracking_number: row.tracking_number,
        }),
        Err(ApiError::FailedPrecondition {
            reason: Reason::UndeliverableAddress,
            message,
        }) => {
            tracing::info!(%order_id, %message, "checkout refused: undeliverable address");
            Payload::ShipmentRejected(pb::ShipmentRejected {
                checkout: Some(checkout.clone()),
                failure_reason: reason::failure::UNDELIVERABLE_ADDRESS.to_owned(),
            })
        }
        Err(error) => return Err(HandlerError::of(event, error)),
    };
    outbox::emit(tx, producer, event, follow_up).await?;
    Ok(())
}

/// The order and the address a `StockReserved` asks to ship to, checked as the
/// CreateShipment request's are (field names prefixed `checkout.`).
fn shipment_of(checkout: &pb::Checkout) -> Result<(Uuid, &Address), ApiError> {
    let mut v = Violations::default();
    let order_id = v.uuid("checkout.order_id", &checkout.order_id);
    let to = checkout.shipping_address.as_ref();
    v.address("checkout.shipping_address", to);
    v.finish(())?;
    let to = to.ok_or_else(|| ApiError::invalid("checkout.shipping_address", "is required"))?;
    Ok((order_id, to))
}
