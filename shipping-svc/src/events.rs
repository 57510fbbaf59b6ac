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
    events::{Event, HandlerError, Participant, Reactions, roles},
    validate::Violations,
};
use shop_proto::common::v1::Address;
use shop_proto::events::v1::{self as pb, envelope::Payload};
use shop_proto::reason;
use sqlx::PgConnection;

use crate::{ids::OrderId, shipments};

/// `ServiceSpec::events`: the durable consumer of shipping-svc's role in
/// `platform::events::roles` (it reacts to reserved stock only, `StockReserved`; the
/// broker's authorization is made from the same role) and its reactions, whose follow-ups
/// it emits as `producer`.
pub fn participant(producer: &'static str) -> Participant {
    Participant::reacting(&roles::SHIPPING_SVC, producer, Shipping)
}

/// Reacts to the checkout's events; all state is in the transaction it is handed.
struct Shipping;

impl Reactions for Shipping {
    async fn react(
        &self,
        tx: &mut PgConnection,
        event: &Event,
    ) -> Result<Option<Payload>, HandlerError> {
        match &event.payload {
            Payload::StockReserved(_) => stock_reserved(tx, event).await.map(Some),
            _ => Err(HandlerError::not_for(crate::NAME, event)),
        }
    }
}

/// Ships the checkout to its address. An address no carrier serves is the checkout's
/// outcome, not an error: `create` refuses before it writes anything, so committing the
/// `ShipmentRejected` commits no shipment.
async fn stock_reserved(tx: &mut PgConnection, event: &Event) -> Result<Payload, HandlerError> {
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
    Ok(follow_up)
}

/// The order and the address a `StockReserved` asks to ship to, checked as the
/// CreateShipment request's are (field names prefixed `checkout.`).
fn shipment_of(checkout: &pb::Checkout) -> Result<(OrderId, &Address), ApiError> {
    let mut v = Violations::default();
    let order_id = OrderId::from(v.uuid("checkout.order_id", &checkout.order_id));
    let to = checkout.shipping_address.as_ref();
    v.address("checkout.shipping_address", to);
    v.finish(())?;
    let to = to.ok_or_else(|| ApiError::invalid("checkout.shipping_address", "is required"))?;
    Ok((order_id, to))
}
