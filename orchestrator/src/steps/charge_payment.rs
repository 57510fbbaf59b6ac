//! charge_payment: take the checkout's total (as inventory priced it) with the customer's
//! payment token. A decline is a reply, not an error: it carries the reason the customer
//! sees (`card_declined`, `insufficient_funds`). Compensation: refund, found by this
//! call's key.

use shop_proto::common::v1 as common;
use shop_proto::payment::v1 as payment;

use super::{Context, attempt, no_business_reason, outcome, undone};
use crate::{
    downstream::Clients,
    saga::{
        FailureReason, Step, StepError,
        rules::{Effects, Outcome},
    },
};

const STEP: Step = Step::ChargePayment;

/// The step's call, under its idempotency key.
pub fn request(ctx: &Context<'_>) -> payment::ChargeRequest {
    payment::ChargeRequest {
        idempotency_key: STEP.key(ctx.saga_id).to_string(),
        order_id: ctx.order_id(),
        amount: Some(common::Money {
            amount_minor: ctx.total_minor,
            currency: ctx.currency.to_owned(),
        }),
        payment_token: ctx.request.payment_token.clone(),
    }
}

pub(super) async fn forward(clients: &Clients, ctx: &Context<'_>) -> (i32, Outcome) {
    let call = ctx.call(request(ctx), STEP.key(ctx.saga_id));
    let (attempts, result) = attempt(&clients.charge, call).await;
    // A decline is the customer's answer, in the reply; payment-svc refusing the request
    // itself (the front door checked token and amount with the same limits) is not.
    (
        attempts,
        outcome(STEP, result, no_business_reason, captured),
    )
}

pub(super) async fn compensate(
    clients: &Clients,
    ctx: &Context<'_>,
) -> (i32, Result<(), StepError>) {
    let key = STEP.compensation_key(ctx.saga_id);
    let message = payment::RefundRequest {
        idempotency_key: key.to_string(),
        payment_id: String::new(),
        charge_idempotency_key: STEP.key(ctx.saga_id).into(),
        reason: ctx.cancel_reason(),
    };
    let (attempts, result) = attempt(&clients.refund, ctx.call(message, key)).await;
    (attempts, undone(result))
}

/// A captured payment, or the decline it reports.
fn captured(reply: payment::ChargeResponse) -> Outcome {
    let paid = reply.payment.unwrap_or_default();
    if paid.status() == payment::PaymentStatus::Captured {
        return Outcome::Done(Effects {
            payment_id: Some(paid.payment_id),
            ..Effects::default()
        });
    }
    let reason = match FailureReason::parse(&paid.decline_reason) {
        Ok(FailureReason::InsufficientFunds) => FailureReason::InsufficientFunds,
        _ => FailureReason::CardDeclined,
    };
    Outcome::Refused {
        reason,
        error: StepError::new(
            format!(
                "payment {} declined: {}",
                paid.payment_id, paid.decline_reason
            ),
            None,
        ),
    }
}
