//! inventory-svc's part in the choreographed checkout (see `shop/events/v1/events.proto`):
//!
//! - `PaymentCaptured` -> reserve every line of the checkout -> `StockReserved`, or
//!   `StockRejected` (`out_of_stock`) with nothing held;
//! - `ShipmentRejected` -> release the order's reservation -> `StockReleased`, passing
//!   the shipment's failure reason on (a compensation).
//!
//! The work is [`crate::reservations`], the same code the ReserveStock and ReleaseStock
//! RPCs run. Each event is handled in the consumer's transaction and its follow-up is
//! written to the outbox in that same transaction, so the change and its announcement
//! commit together; the inbox makes a redelivery change nothing.

use platform::reason::Reason;
use platform::{
    ApiError,
    events::{Event, HandlerError, Participant, Reactions, roles},
    validate::Violations,
};
use shop_proto::events::v1::{self as pb, envelope::Payload};
use shop_proto::reason;
use sqlx::PgConnection;

use crate::{
    domain::{self, Line},
    ids::OrderId,
    reservations,
};

/// `ServiceSpec::events`: the durable consumer of inventory-svc's role in
/// `platform::events::roles` (the two events it reacts to, `PaymentCaptured` and
/// `ShipmentRejected`; the broker's authorization is made from the same role) and its
/// reactions, whose follow-ups it emits as `producer`.
pub fn participant(producer: &'static str) -> Participant {
    Participant::reacting(&roles::INVENTORY_SVC, producer, Inventory)
}

/// Reacts to the checkout's events; all state is in the transaction it is handed.
struct Inventory;

impl Reactions for Inventory {
    async fn react(
        &self,
        tx: &mut PgConnection,
        event: &Event,
    ) -> Result<Option<Payload>, HandlerError> {
        match &event.payload {
            Payload::PaymentCaptured(_) => payment_captured(tx, event).await.map(Some),
            Payload::ShipmentRejected(rejected) => {
                shipment_rejected(tx, event, rejected).await.map(Some)
            }
            _ => Err(HandlerError::not_for(crate::NAME, event)),
        }
    }
}

/// Reserves the checkout's lines for its order. Out of stock is the checkout's outcome,
/// not an error: `reserve` refuses before it writes anything, so committing the
/// `StockRejected` commits no stock change.
async fn payment_captured(tx: &mut PgConnection, event: &Event) -> Result<Payload, HandlerError> {
    let checkout = event.checkout()?;
    let (order_id, lines) = reservation_of(checkout).map_err(|e| HandlerError::of(event, e))?;
    let follow_up = match reservations::reserve(tx, order_id, &lines).await {
        Ok(reservation) => Payload::StockReserved(pb::StockReserved {
            checkout: Some(checkout.clone()),
            reservation_id: reservation.row.reservation_id.to_string(),
        }),
        Err(ApiError::FailedPrecondition {
            reason: Reason::OutOfStock,
            message,
        }) => {
            tracing::info!(%order_id, %message, "checkout refused: out of stock");
            Payload::StockRejected(pb::StockRejected {
                checkout: Some(checkout.clone()),
                failure_reason: reason::failure::OUT_OF_STOCK.to_owned(),
            })
        }
        Err(error) => return Err(HandlerError::of(event, error)),
    };
    Ok(follow_up)
}

/// Undoes the reservation of a checkout that cannot be shipped. A reservation released
/// already (by ReleaseStock, say) is released again as a no-op, and the compensation
/// still moves on.
async fn shipment_rejected(
    tx: &mut PgConnection,
    event: &Event,
    rejected: &pb::ShipmentRejected,
) -> Result<Payload, HandlerError> {
    let checkout = event.checkout()?;
    let mut v = Violations::default();
    let order_id = OrderId::from(v.uuid("checkout.order_id", &checkout.order_id));
    v.text("failure_reason", &rejected.failure_reason, 1, 200);
    v.finish(()).map_err(|e| HandlerError::of(event, e))?;
    reservations::release_of_order(tx, order_id)
        .await
        .map_err(|e| HandlerError::of(event, e))?;
    Ok(Payload::StockReleased(pb::StockReleased {
        checkout: Some(checkout.clone()),
        failure_reason: rejected.failure_reason.clone(),
    }))
}

/// The order and the lines a `PaymentCaptured` asks to reserve, checked as the
/// ReserveStock request's are (field names prefixed `checkout.`).
fn reservation_of(checkout: &pb::Checkout) -> Result<(OrderId, Vec<Line>), ApiError> {
    let mut v = Violations::default();
    let order_id = OrderId::from(v.uuid("checkout.order_id", &checkout.order_id));
    let lines: Vec<Line> = checkout
        .lines
        .iter()
        .map(|l| Line {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    domain::check_lines(&mut v, "checkout.lines", &lines);
    v.finish((order_id, lines))
}
