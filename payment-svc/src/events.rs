//! payment-svc's part in the choreographed checkout (the flow is in `events.proto`):
//!
//! - `OrderPlaced` -> checkout.total is charged with checkout.payment_token ->
//!   `PaymentCaptured`, or `PaymentDeclined` with the decline reason (a declined card is
//!   the checkout's outcome, not an error);
//! - `StockRejected`, `StockReleased` -> the order's capture is refunded ->
//!   `PaymentRefunded` with the triggering event's failure_reason.
//!
//! Each reaction runs the same operations as the gRPC API ([`crate::ops`]) in the
//! consumer's transaction, and writes its follow-up event to the outbox in that same
//! transaction. An event that cannot make sense here (no checkout, a bad order_id or
//! amount, an unknown token, nothing captured to refund) is poison: the consumer parks
//! it for a person, since money must never move on a guess.

use platform::{
    events::{Event, HandlerError, Participant, Reactions, roles},
    validate::Violations,
};
use shop_proto::events::v1::{self as ev, envelope::Payload};
use sqlx::PgConnection;

use crate::{
    domain::Decision,
    ids::OrderId,
    ops::{self, Charge},
    store,
};

/// `ServiceSpec::events`: the durable consumer of payment-svc's role in
/// `platform::events::roles` (what it reacts to; the broker's authorization is made from
/// the same role) and its reactions, whose follow-ups it emits as `producer`.
pub fn participant(producer: &'static str) -> Participant {
    Participant::reacting(&roles::PAYMENT_SVC, producer, Payments)
}

/// Reacts to the events payment-svc consumes.
struct Payments;

impl Reactions for Payments {
    async fn react(
        &self,
        tx: &mut PgConnection,
        event: &Event,
    ) -> Result<Option<Payload>, HandlerError> {
        match &event.payload {
            Payload::OrderPlaced(_) => charge(tx, event.checkout()?).await.map(Some),
            Payload::StockRejected(e) => refund(tx, event.checkout()?, &e.failure_reason).await,
            Payload::StockReleased(e) => refund(tx, event.checkout()?, &e.failure_reason).await,
            _ => Err(HandlerError::not_for(crate::NAME, event)),
        }
    }
}

/// Charges the placed order's total, checked and decided as Charge decides it.
async fn charge(tx: &mut PgConnection, checkout: &ev::Checkout) -> Result<Payload, HandlerError> {
    let mut v = Violations::default();
    let charge = Charge::check(
        &mut v,
        ("checkout.order_id", &checkout.order_id),
        ("checkout.total", checkout.total.as_ref()),
        ("checkout.payment_token", &checkout.payment_token),
    );
    let charge = v.finish(charge)?;
    let row = ops::charge(tx, &charge).await?;
    let (checkout, payment_id) = (Some(checkout.clone()), row.payment_id.to_string());
    Ok(match charge.decision {
        Decision::Approve => Payload::PaymentCaptured(ev::PaymentCaptured {
            checkout,
            payment_id,
        }),
        Decision::Decline(reason) => Payload::PaymentDeclined(ev::PaymentDeclined {
            checkout,
            payment_id,
            // What the payment row records (`ops::charge`), so the event and GetPayment
            // agree.
            failure_reason: reason.code().to_owned(),
        }),
    })
}

/// Refunds the order's capture, a compensation for a checkout that cannot complete;
/// announces it when money went back.
async fn refund(
    tx: &mut PgConnection,
    checkout: &ev::Checkout,
    failure_reason: &str,
) -> Result<Option<Payload>, HandlerError> {
    let mut v = Violations::default();
    let order_id = OrderId::from(v.uuid("checkout.order_id", &checkout.order_id));
    ops::check_reason(&mut v, "failure_reason", failure_reason);
    if failure_reason.is_empty() {
        // A refund by RPC may go without a reason; this one is carried on, and ends up as
        // the order's cancel reason.
        v.add("failure_reason", "must not be empty");
    }
    v.finish(())?;
    // Only a capture precedes these events: without one (never paid, or refunded
    // already) the event does not belong to this order's story, and a person decides.
    let captured = store::lock_captured(tx, order_id).await?.ok_or_else(|| {
        HandlerError::Poison(format!(
            "order {order_id} has no captured payment to refund"
        ))
    })?;
    let refunded = ops::refund(tx, captured, Some(failure_reason)).await?;
    Ok(refunded.refunded.then(|| {
        Payload::PaymentRefunded(ev::PaymentRefunded {
            checkout: Some(checkout.clone()),
            payment_id: refunded.payment.payment_id.to_string(),
            failure_reason: failure_reason.to_owned(),
        })
    }))
}
