//! create_shipment: the pivot. Once a shipment exists the saga only goes forward; before
//! that, an address shipping-svc does not serve (`UNDELIVERABLE_ADDRESS`) unwinds every
//! earlier step. Compensation: cancel the shipment, found by this call's key.

use platform::reason::Reason;
use shop_proto::shipping::v1 as shipping;

use super::{Context, attempt, outcome, undone};
use crate::{
    downstream::Clients,
    saga::{
        FailureReason, Step, StepError,
        rules::{Effects, Outcome},
    },
};

const STEP: Step = Step::CreateShipment;

/// The step's call, under its idempotency key.
pub fn request(ctx: &Context<'_>) -> shipping::CreateShipmentRequest {
    shipping::CreateShipmentRequest {
        idempotency_key: STEP.key(ctx.saga_id).to_string(),
        order_id: ctx.order_id(),
        address: ctx.request.shipping_address.clone(),
    }
}

pub(super) async fn forward(clients: &Clients, ctx: &Context<'_>) -> (i32, Outcome) {
    let call = ctx.call(request(ctx), STEP.key(ctx.saga_id));
    let (attempts, result) = attempt(&clients.create_shipment, call).await;
    let outcome = outcome(STEP, result, business, |reply| {
        Outcome::Done(Effects {
            tracking_number: reply.shipment.map(|s| s.tracking_number),
            ..Effects::default()
        })
    });
    (attempts, outcome)
}

pub(super) async fn compensate(
    clients: &Clients,
    ctx: &Context<'_>,
) -> (i32, Result<(), StepError>) {
    let key = STEP.compensation_key(ctx.saga_id);
    let message = shipping::CancelShipmentRequest {
        idempotency_key: key.to_string(),
        shipment_id: String::new(),
        create_idempotency_key: STEP.key(ctx.saga_id).into(),
    };
    let (attempts, result) = attempt(&clients.cancel_shipment, ctx.call(message, key)).await;
    (attempts, undone(result))
}

/// The customer's answer at this step: shipping-svc does not serve the address.
pub(super) fn business(reason: Reason) -> Option<FailureReason> {
    (reason == Reason::UndeliverableAddress).then_some(FailureReason::UndeliverableAddress)
}
