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
    events::{ConsumerSpec, Event, Handler, HandlerError, Participant, envelope::kind_of, outbox},
    validate::Violations,
};
use shop_proto::events::v1::{self as pb, envelope::Payload};
use shop_proto::reason;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::{self, Line},
    reservations,
};

/// The durable consumer: the two events inventory-svc reacts to (`PaymentCaptured`,
/// `ShipmentRejected`), from its role in `platform::events::roles`, which the broker's
/// authorization is made from too.
pub fn consumer() -> ConsumerSpec {
    platform::events::roles::INVENTORY_SVC.consumer()
}

/// `ServiceSpec::events`: the consumer and the handler the service's events task runs
/// (beside the outbox relay), and that `EventAdminService` retries dead letters with.
pub fn participant(producer: &'static str) -> Participant {
    Participant::new(consumer(), InventoryHandler { producer })
}

/// Reacts to the checkout's events; all state is in the transaction it is handed.
#[derive(Debug, Clone, Copy)]
pub struct InventoryHandler {
    /// The producer name of the events it emits (`inventory`, from the service's name).
    pub producer: &'static str,
}

impl Handler for InventoryHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandlerError> {
        match &event.payload {
            Payload::PaymentCaptured(_) => payment_captured(tx, self.producer, event).await,
            Payload::ShipmentRejected(rejected) => {
                shipment_rejected(tx, self.producer, event, rejected).await
            }
            // Each subject has a consumer of its own, so anything else was misrouted:
            // a person should see it.
            other => Err(HandlerError::Poison(format!(
                "{} is not an event inventory-svc reacts to",
                kind_of(other)
            ))),
        }
    }
}

/// Reserves the checkout's lines for its order. Out of stock is the checkout's outcome,
/// not an error: `reserve` refuses before it writes anything, so committing the
/// `StockRejected` commits no stock change.
async fn payment_captured(
    tx: &mut PgConnection,
    producer: &str,
    event: &Event,
) -> Result<(), HandlerError> {
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
    outbox::emit(tx, producer, event, follow_up).await?;
    Ok(())
}

/// Undoes the reservation of a checkout that cannot be shipped. A reservation released
/// already (by ReleaseStock, say) is released again as a no-op, and the compensation
/// still moves on.
async fn shipment_rejected(
    tx: &mut PgConnection,
    producer: &str,
    event: &Event,
    rejected: &pb::ShipmentRejected,
) -> Result<(), HandlerError> {
    let checkout = event.checkout()?;
    let mut v = Violations::default();
    let order_id = v.uuid("checkout.order_id", &checkout.order_id);
    v.text("failure_reason", &rejected.failure_reason, 1, 200);
    v.finish(()).map_err(|e| HandlerError::of(event, e))?;
    reservations::release_of_order(tx, order_id)
        .await
        .map_err(|e| HandlerError::of(event, e))?;
    let released = Payload::StockReleased(pb::StockReleased {
        checkout: Some(checkout.clone()),
        failure_reason: rejected.failure_reason.clone(),
    });
    outbox::emit(tx, producer, event, released).await?;
    Ok(())
}

/// The order and the lines a `PaymentCaptured` asks to reserve, checked as the
/// ReserveStock request's are (field names prefixed `checkout.`).
fn reservation_of(checkout: &pb::Checkout) -> Result<(Uuid, Vec<Line>), ApiError> {
    let mut v = Violations::default();
    let order_id = v.uuid("checkout.order_id", &checkout.order_id);
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
