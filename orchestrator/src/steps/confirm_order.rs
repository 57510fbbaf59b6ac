//! confirm_order: move the order to CONFIRMED. Past the pivot, so it has no compensation
//! and the engine retries it until it succeeds (a refusal here needs a person).

use shop_proto::order::v1 as order;

use super::{Context, attempt, no_business_reason, outcome};
use crate::{
    downstream::Clients,
    saga::{
        Step,
        rules::{Effects, Outcome},
    },
};

const STEP: Step = Step::ConfirmOrder;

/// The step's call, under its idempotency key.
pub fn request(ctx: &Context<'_>) -> order::ConfirmOrderRequest {
    order::ConfirmOrderRequest {
        idempotency_key: STEP.key(ctx.saga_id).to_string(),
        order_id: ctx.order_id(),
    }
}

pub(super) async fn forward(clients: &Clients, ctx: &Context<'_>) -> (i32, Outcome) {
    let call = ctx.call(request(ctx), STEP.key(ctx.saga_id));
    let (attempts, result) = attempt(&clients.confirm_order, call).await;
    // Past the pivot any refusal parks the saga; none is the customer's answer.
    let outcome = outcome(STEP, result, no_business_reason, |_| {
        Outcome::Done(Effects::default())
    });
    (attempts, outcome)
}
