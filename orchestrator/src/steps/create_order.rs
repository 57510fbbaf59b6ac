//! create_order: record the order (PENDING) in order-svc, with the priced lines.
//! Compensation: cancel the order, found by this call's key. A refusal here is never the
//! customer's answer: the checkout fails as `dependency_unavailable` (or parks when the
//! checkout has an order already; see [`super`] for how refusals are read).

use shop_proto::{inventory::v1 as inventory, order::v1 as order};

use super::{Context, attempt, no_business_reason, outcome, undone};
use crate::{
    downstream::Clients,
    saga::{
        Step, StepError,
        rules::{Effects, Outcome},
    },
};

const STEP: Step = Step::CreateOrder;

/// The step's call, under its idempotency key.
pub fn request(ctx: &Context<'_>) -> order::CreateOrderRequest {
    order::CreateOrderRequest {
        idempotency_key: STEP.key(ctx.saga_id).to_string(),
        // The checkout is the saga: order-svc keeps one order per checkout.
        checkout_id: ctx.saga_id.to_string(),
        customer_id: ctx.request.customer_id.clone(),
        lines: lines(ctx.priced),
        shipping_address: ctx.request.shipping_address.clone(),
    }
}

pub(super) async fn forward(clients: &Clients, ctx: &Context<'_>) -> (i32, Outcome) {
    let call = ctx.call(request(ctx), STEP.key(ctx.saga_id));
    let (attempts, result) = attempt(&clients.create_order, call).await;
    (attempts, outcome(STEP, result, no_business_reason, placed))
}

/// The order the reply names. A reply without a readable order id breaks order-svc's
/// contract: the order may exist, so the step counts as unavailable (compensated by its
/// key) rather than succeeded with no id for the later steps to send.
fn placed(reply: order::CreateOrderResponse) -> Outcome {
    let id = reply.order.map(|o| o.order_id).unwrap_or_default();
    match uuid::Uuid::try_parse(&id) {
        Ok(order_id) => Outcome::Done(Effects {
            order_id: Some(order_id.into()),
            ..Effects::default()
        }),
        Err(_) => Outcome::Unavailable {
            error: StepError::new(
                format!("CreateOrder answered without a readable order id ({id:?})"),
                Some(tonic::Code::Internal),
            ),
        },
    }
}

pub(super) async fn compensate(
    clients: &Clients,
    ctx: &Context<'_>,
) -> (i32, Result<(), StepError>) {
    let key = STEP.compensation_key(ctx.saga_id);
    let message = order::CancelOrderRequest {
        idempotency_key: key.to_string(),
        order_id: String::new(),
        create_idempotency_key: STEP.key(ctx.saga_id).into(),
        reason: ctx.cancel_reason(),
    };
    let (attempts, result) = attempt(&clients.cancel_order, ctx.call(message, key)).await;
    (attempts, undone(result))
}

/// The order lines of a priced cart.
fn lines(priced: &inventory::PriceCartResponse) -> Vec<order::OrderLine> {
    priced
        .lines
        .iter()
        .map(|l| order::OrderLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price.clone(),
            line_total: l.line_total.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_without_an_order_id_is_not_a_success() {
        let reply = |id: &str| order::CreateOrderResponse {
            order: Some(order::Order {
                order_id: id.into(),
                ..Default::default()
            }),
        };
        let id = uuid::Uuid::now_v7();
        assert!(matches!(
            placed(reply(&id.to_string())),
            Outcome::Done(Effects { order_id: Some(o), .. }) if o.as_uuid() == id
        ));
        assert!(matches!(placed(reply("")), Outcome::Unavailable { .. }));
        assert!(matches!(
            placed(order::CreateOrderResponse { order: None }),
            Outcome::Unavailable { .. }
        ));
    }
}
