//! confirm_order: move the order to CONFIRMED. Past the pivot, so it has no compensation
//! and the engine retries it until it succeeds (a refusal here needs a person).

use shop_proto::order::v1 as order;
use tonic::Status;

use super::{Context, attempt, outcome};
use crate::{
    downstream::Clients,
    saga::{
        FailureReason, Step,
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
    let outcome = outcome(result, refusal, |_| Outcome::Done(Effects::default()));
    (attempts, outcome)
}

fn refusal(_: &Status) -> FailureReason {
    FailureReason::DependencyUnavailable
}
