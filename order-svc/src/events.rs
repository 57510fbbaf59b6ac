//! order-svc's part in the choreographed checkout (the flow is in `events.proto`):
//!
//! - `CheckoutRequested` -> the order is created PENDING -> `OrderPlaced`;
//! - `ShipmentCreated` -> CONFIRMED -> `OrderConfirmed`;
//! - `PaymentDeclined`, `PaymentRefunded` -> CANCELLED with the event's failure_reason ->
//!   `OrderCancelled`.
//!
//! Each reaction runs the same operations as the gRPC API ([`crate::ops`]) in the
//! consumer's transaction, and writes its follow-up event to the outbox in that same
//! transaction. An event that cannot make sense here (no checkout, a bad order_id, lines
//! the API would refuse) is poison: the consumer parks it, naming the field. So is one
//! that contradicts what order-svc recorded: a `CheckoutRequested` for a checkout that
//! has an order already (one order per checkout, held by the database).

use platform::{
    events::{Event, HandlerError, Participant, Reactions, roles},
    validate::Violations,
};
use shop_proto::events::v1::{self as ev, envelope::Payload};
use shop_proto::order::v1 as pb;
use sqlx::PgConnection;

use crate::{
    ids::OrderId,
    ops::{self, Moved},
};

/// `ServiceSpec::events`: the durable consumer of order-svc's role in
/// `platform::events::roles` (what it reacts to; the broker's authorization is made from
/// the same role) and its reactions, whose follow-ups it emits as `producer`.
pub fn participant(producer: &'static str) -> Participant {
    Participant::reacting(&roles::ORDER_SVC, producer, Orders)
}

/// Reacts to the events order-svc consumes.
struct Orders;

impl Reactions for Orders {
    async fn react(
        &self,
        tx: &mut PgConnection,
        event: &Event,
    ) -> Result<Option<Payload>, HandlerError> {
        match &event.payload {
            Payload::CheckoutRequested(_) => place(tx, event.checkout()?).await.map(Some),
            Payload::ShipmentCreated(e) => confirm(tx, event.checkout()?, &e.tracking_number).await,
            Payload::PaymentDeclined(e) => cancel(tx, event.checkout()?, &e.failure_reason).await,
            Payload::PaymentRefunded(e) => cancel(tx, event.checkout()?, &e.failure_reason).await,
            _ => Err(HandlerError::not_for(crate::NAME, event)),
        }
    }
}

/// Creates the checkout's order, checked as CreateOrder checks it, and announces it with
/// the checkout's order_id set.
async fn place(tx: &mut PgConnection, checkout: &ev::Checkout) -> Result<Payload, HandlerError> {
    let lines: Vec<pb::OrderLine> = checkout.lines.iter().map(order_line).collect();
    let mut v = Violations::default();
    let draft = ops::draft(
        &mut v,
        "checkout.",
        &checkout.checkout_id,
        &checkout.customer_id,
        &lines,
        checkout.shipping_address.as_ref(),
    );
    // Payment charges checkout.total: it must be the total the order records.
    match &checkout.total {
        None => v.add("checkout.total", "is required"),
        Some(total)
            if v.is_empty()
                && (total.amount_minor, total.currency.as_str())
                    != (draft.total_minor, draft.currency.as_str()) =>
        {
            v.add(
                "checkout.total",
                format!(
                    "must be the sum of the line totals, {} {}",
                    draft.total_minor, draft.currency
                ),
            );
        }
        Some(_) => {}
    }
    let draft = v.finish(draft)?;
    let order = ops::place(tx, draft).await?;
    let order_id = order.row.order_id.to_string();
    tracing::info!(order_id, "order placed for the checkout");
    Ok(Payload::OrderPlaced(ev::OrderPlaced {
        checkout: Some(ev::Checkout {
            order_id,
            ..checkout.clone()
        }),
    }))
}

/// Confirms the shipped order and announces it.
async fn confirm(
    tx: &mut PgConnection,
    checkout: &ev::Checkout,
    tracking_number: &str,
) -> Result<Option<Payload>, HandlerError> {
    let moved = ops::confirm(tx, order_id(checkout)?).await?;
    note_unchanged(&moved);
    Ok(Some(Payload::OrderConfirmed(ev::OrderConfirmed {
        checkout: Some(checkout.clone()),
        tracking_number: tracking_number.to_owned(),
    })))
}

/// Cancels the order for `failure_reason` and announces it.
async fn cancel(
    tx: &mut PgConnection,
    checkout: &ev::Checkout,
    failure_reason: &str,
) -> Result<Option<Payload>, HandlerError> {
    let mut v = Violations::default();
    ops::check_reason(&mut v, "failure_reason", failure_reason);
    v.finish(())?;
    let moved = ops::cancel(tx, order_id(checkout)?, failure_reason).await?;
    note_unchanged(&moved);
    Ok(Some(Payload::OrderCancelled(ev::OrderCancelled {
        checkout: Some(checkout.clone()),
        failure_reason: failure_reason.to_owned(),
    })))
}

/// Notes an order that was already in the state the event asks for. It is announced all
/// the same: it got there some other way (an operator's CancelOrder, say), and the
/// checkout still has to hear that it ended; its followers merge a repeat harmlessly.
fn note_unchanged(moved: &Moved) {
    if !moved.changed {
        tracing::info!(
            order_id = %moved.order.row.order_id,
            status = %moved.order.row.status,
            "order already in that state; announcing it for this checkout"
        );
    }
}

fn order_id(checkout: &ev::Checkout) -> Result<OrderId, HandlerError> {
    let mut v = Violations::default();
    let id = OrderId::from(v.uuid("checkout.order_id", &checkout.order_id));
    Ok(v.finish(id)?)
}

/// An event's line as the order API takes it, so both are checked by the same code.
fn order_line(line: &ev::Line) -> pb::OrderLine {
    pb::OrderLine {
        sku: line.sku.clone(),
        quantity: line.quantity,
        unit_price: line.unit_price.clone(),
        line_total: line.line_total.clone(),
    }
}
