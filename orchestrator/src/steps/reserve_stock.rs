//! reserve_stock: hold the units of every line for the order. Comes after the charge (the
//! article's order), so an out-of-stock line refunds the payment. Compensation: release,
//! found by this call's key.

use platform::reason::Reason;
use shop_proto::inventory::v1 as inventory;

use super::{Context, attempt, outcome, undone};
use crate::{
    downstream::Clients,
    saga::{
        FailureReason, Step, StepError,
        rules::{Effects, Outcome},
    },
};

const STEP: Step = Step::ReserveStock;

/// The step's call, under its idempotency key.
pub fn request(ctx: &Context<'_>) -> inventory::ReserveStockRequest {
    inventory::ReserveStockRequest {
        idempotency_key: STEP.key(ctx.saga_id).to_string(),
        order_id: ctx.order_id(),
        lines: ctx
            .priced
            .lines
            .iter()
            .map(|l| inventory::CartLine {
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect(),
    }
}

pub(super) async fn forward(clients: &Clients, ctx: &Context<'_>) -> (i32, Outcome) {
    let call = ctx.call(request(ctx), STEP.key(ctx.saga_id));
    let (attempts, result) = attempt(&clients.reserve_stock, call).await;
    let outcome = outcome(
        STEP,
        result,
        business,
        |_| Outcome::Done(Effects::default()),
    );
    (attempts, outcome)
}

pub(super) async fn compensate(
    clients: &Clients,
    ctx: &Context<'_>,
) -> (i32, Result<(), StepError>) {
    let key = STEP.compensation_key(ctx.saga_id);
    let message = inventory::ReleaseStockRequest {
        idempotency_key: key.to_string(),
        reservation_id: String::new(),
        reserve_idempotency_key: STEP.key(ctx.saga_id).into(),
    };
    let (attempts, result) = attempt(&clients.release_stock, ctx.call(message, key)).await;
    (attempts, undone(result))
}

/// The customer's answer at this step: a line needs more units than are available.
pub(super) fn business(reason: Reason) -> Option<FailureReason> {
    (reason == Reason::OutOfStock).then_some(FailureReason::OutOfStock)
}
