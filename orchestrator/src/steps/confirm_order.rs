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

pub(super) async fn forward(clients: &Clients, ctx: &Context<'_>) -> (i32, Outcome) {
    let key = STEP.key(ctx.saga_id);
    let message = order::ConfirmOrderRequest {
        idempotency_key: key.to_string(),
        order_id: ctx.order_id(),
    };
    let (attempts, result) = attempt(&clients.confirm_order, ctx.call(message, key)).await;
    let outcome = outcome(result, refusal, |_| Outcome::Done(Effects::default()));
    (attempts, outcome)
}

fn refusal(_: &Status) -> FailureReason {
    FailureReason::DependencyUnavailable
}
