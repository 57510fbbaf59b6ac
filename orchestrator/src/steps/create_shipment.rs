//! create_shipment: the pivot. Once a shipment exists the saga only goes forward; before
//! that, an address shipping-svc does not serve (`UNDELIVERABLE_ADDRESS`) unwinds every
//! earlier step. Compensation: cancel the shipment, found by this call's key.

use shop_proto::shipping::v1 as shipping;
use tonic::Status;

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
    let outcome = outcome(result, refusal, |reply| {
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

/// shipping-svc refuses an address it does not serve.
fn refusal(_: &Status) -> FailureReason {
    FailureReason::UndeliverableAddress
}
