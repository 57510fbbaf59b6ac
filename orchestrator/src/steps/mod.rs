//! The checkout's steps, one module each: how its request is built from the saga, the
//! forward call, its compensation, and what a refusal means to the customer. The engine
//! only sequences them ([`forward`], [`compensate`]); the saga's rules decide what the
//! outcomes mean.
//!
//! Each call goes through its downstream's resilience stack (`resilience`), under the
//! step's idempotency key, so a retry or a replay after a crash can never act twice. A
//! compensation names its target by the forward call's key, so it also blocks a forward
//! call that has not arrived yet.
//!
//! A refusal is read by the `ErrorInfo` reason the service attached ([`Reason`], the enum
//! the services answer with), never by its code alone ([`refusal`]):
//!
//! - **the customer's answer**: the reasons a step names as its own (`OUT_OF_STOCK` for
//!   reserve_stock, `UNDELIVERABLE_ADDRESS` for create_shipment) end the checkout with
//!   that `failure_reason`, after compensating;
//! - **a conflict**: the order already has what the step makes, made under another key
//!   (`ORDER_ALREADY_PAID`, `ORDER_ALREADY_RESERVED`, `ORDER_ALREADY_SHIPPED`,
//!   `CHECKOUT_ALREADY_ORDERED`). Compensating by this step's key cannot undo that other
//!   payment, reservation, shipment or order, and would cancel the order under it; the
//!   saga parks (NEEDS_ATTENTION, `dependency_unavailable`) for a person to look first,
//!   and ResumeCheckout then compensates;
//! - **a defect**: any other refusal (`IDEMPOTENCY_KEY_REUSED`, a compensation of this
//!   very call that came first: `CANCELLED_BEFORE_CREATED`, `CANCELLED_BEFORE_CHARGED`,
//!   `RELEASED_BEFORE_RESERVED`; a reason meant for another step; none at all: the
//!   services disagree on what is valid). Nothing stands that the step's own key cannot
//!   undo, so the saga compensates as `dependency_unavailable` at once (the customer is
//!   not left waiting for a person), and it is logged at ERROR and counted
//!   (`saga_unexpected_refusals_total{step,reason}`), since it needs a developer.

pub mod charge_payment;
pub mod confirm_order;
pub mod create_order;
pub mod create_shipment;
pub mod reserve_stock;

use platform::reason::Reason;
use shop_proto::{checkout::v1::PlaceOrderRequest, inventory::v1::PriceCartResponse};
use tonic::Status;
use tower::BoxError;

use crate::{
    downstream::{
        Clients, classify,
        resilience::{Call, StepService, send},
    },
    ids::{IdempotencyKey, OrderId, SagaId},
    saga::{
        FailureReason, Step, StepError,
        rules::{Effects, Outcome},
    },
};

/// What a saga's calls are built from: what PlaceOrder recorded, and what earlier steps
/// learnt.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub saga_id: SagaId,
    pub request: &'a PlaceOrderRequest,
    /// The cart as inventory priced it: the prices are never the caller's.
    pub priced: &'a PriceCartResponse,
    pub total_minor: i64,
    pub currency: &'a str,
    /// Known once create_order succeeded.
    pub order_id: Option<OrderId>,
    pub failure_reason: Option<FailureReason>,
    /// `x-fault` specs forwarded on every call (fault injection).
    pub fault: &'a str,
    /// The trace the saga belongs to, forwarded when no span is exported.
    pub traceparent: &'a str,
}

impl Context<'_> {
    fn call<M>(&self, message: M, key: IdempotencyKey) -> Call<M> {
        Call::new(message, Some(key), self.fault, self.traceparent)
    }

    fn order_id(&self) -> String {
        self.order_id.map(|id| id.to_string()).unwrap_or_default()
    }

    /// The reason compensations pass on (refunds and cancellations record it).
    fn cancel_reason(&self) -> String {
        self.failure_reason
            .map_or("checkout cancelled", FailureReason::code)
            .to_owned()
    }
}

/// Makes the forward call of `step`; returns the attempts it took and its outcome.
pub async fn forward(clients: &Clients, ctx: &Context<'_>, step: Step) -> (i32, Outcome) {
    match step {
        // Priced before the saga starts (PlaceOrder needs the total to answer).
        Step::PriceCart => (0, Outcome::Done(Effects::default())),
        Step::CreateOrder => create_order::forward(clients, ctx).await,
        Step::ChargePayment => charge_payment::forward(clients, ctx).await,
        Step::ReserveStock => reserve_stock::forward(clients, ctx).await,
        Step::CreateShipment => create_shipment::forward(clients, ctx).await,
        Step::ConfirmOrder => confirm_order::forward(clients, ctx).await,
    }
}

/// Makes the compensation call of `step`; returns the attempts it took and its result.
pub async fn compensate(
    clients: &Clients,
    ctx: &Context<'_>,
    step: Step,
) -> (i32, Result<(), StepError>) {
    match step {
        Step::CreateOrder => create_order::compensate(clients, ctx).await,
        Step::ChargePayment => charge_payment::compensate(clients, ctx).await,
        Step::ReserveStock => reserve_stock::compensate(clients, ctx).await,
        Step::CreateShipment => create_shipment::compensate(clients, ctx).await,
        // Nothing to undo: pricing reads, and confirmation is past the pivot.
        Step::PriceCart | Step::ConfirmOrder => (0, Ok(())),
    }
}

/// Sends one call through its stack; returns the attempts it took (at least one).
async fn attempt<M, R>(service: &StepService<M, R>, call: Call<M>) -> (i32, Result<R, BoxError>)
where
    M: Clone + Send + 'static,
    R: Send + 'static,
{
    let result = send(service, call.clone()).await;
    let attempts = i32::try_from(call.attempts().max(1)).unwrap_or(i32::MAX);
    (attempts, result)
}

/// Classifies a forward call's result: a reply is read by `done`, a refusal by
/// [`refusal`] with the reasons that are the customer's answer at this step (`business`),
/// anything else (retries exhausted, the breaker open) is unavailable.
fn outcome<R>(
    step: Step,
    result: Result<R, BoxError>,
    business: fn(Reason) -> Option<FailureReason>,
    done: impl FnOnce(R) -> Outcome,
) -> Outcome {
    match result {
        Ok(reply) => done(reply),
        Err(error) => match error.downcast_ref::<Status>() {
            Some(status) if classify::is_refusal(status.code()) => refused(step, status, business),
            _ => Outcome::Unavailable {
                error: failure(&error),
            },
        },
    }
}

/// What a refusal means for the saga (see the module's comment for why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The customer's answer: compensate, and tell them this.
    Business(FailureReason),
    /// The order has what the step makes under another key: park before compensating.
    Conflict,
    /// A refusal no correct service gives the saga here: compensate, and say so loudly.
    Defect,
}

/// Reads a refusal by its reason.
fn refusal(reason: Option<Reason>, business: fn(Reason) -> Option<FailureReason>) -> Refusal {
    let Some(reason) = reason else {
        return Refusal::Defect;
    };
    if let Some(answer) = business(reason) {
        return Refusal::Business(answer);
    }
    match reason {
        Reason::OrderAlreadyPaid
        | Reason::OrderAlreadyReserved
        | Reason::OrderAlreadyShipped
        | Reason::CheckoutAlreadyOrdered => Refusal::Conflict,
        _ => Refusal::Defect,
    }
}

/// The outcome of a refused forward call; its error names the reason, for `last_error`.
fn refused(step: Step, status: &Status, business: fn(Reason) -> Option<FailureReason>) -> Outcome {
    let reason = Reason::of(status);
    let error = StepError::new(
        match reason {
            Some(reason) => format!("{reason}: {}", status.message()),
            None => status.message().to_owned(),
        },
        Some(status.code()),
    );
    match refusal(reason, business) {
        Refusal::Business(reason) => Outcome::Refused { reason, error },
        Refusal::Conflict => Outcome::Conflict { error },
        Refusal::Defect => {
            let reason = reason.map_or("none", Reason::as_str);
            tracing::error!(%step, reason, code = ?status.code(), error = %error.message, "unexpected refusal (a defect): compensating as dependency_unavailable");
            metrics::counter!("saga_unexpected_refusals_total", "step" => step.code(), "reason" => reason)
                .increment(1);
            Outcome::Refused {
                reason: FailureReason::DependencyUnavailable,
                error,
            }
        }
    }
}

/// For steps whose refusals are never the customer's answer.
fn no_business_reason(_: Reason) -> Option<FailureReason> {
    None
}

/// A compensation's result for the saga's record.
fn undone<R>(result: Result<R, BoxError>) -> Result<(), StepError> {
    result.map(drop).map_err(|error| failure(&error))
}

fn failure(error: &BoxError) -> StepError {
    let (message, code) = classify::describe(error);
    StepError::new(message, Some(code))
}

#[cfg(test)]
mod tests {
    use platform::ApiError;
    use tonic::Code;

    use super::*;
    use crate::saga::GrpcCode;

    /// A refusal exactly as a service sends it: through platform's own mapping.
    fn refused_with(reason: Reason) -> Status {
        Status::from(ApiError::precondition(reason, "refused"))
    }

    fn outcome_of(step: Step, status: Status) -> Outcome {
        let business = match step {
            Step::ReserveStock => reserve_stock::business,
            Step::CreateShipment => create_shipment::business,
            _ => no_business_reason,
        };
        outcome::<()>(step, Err(Box::new(status)), business, |()| {
            Outcome::Done(Effects::default())
        })
    }

    fn reason(outcome: &Outcome) -> Option<FailureReason> {
        match outcome {
            Outcome::Refused { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    #[test]
    fn only_the_steps_own_reason_is_the_customers_answer() {
        let out = outcome_of(Step::ReserveStock, refused_with(Reason::OutOfStock));
        assert_eq!(reason(&out), Some(FailureReason::OutOfStock));
        let out = outcome_of(
            Step::CreateShipment,
            refused_with(Reason::UndeliverableAddress),
        );
        assert_eq!(reason(&out), Some(FailureReason::UndeliverableAddress));
        // The review's cases: none of these is out of stock or an undeliverable address.
        for (step, refusal) in [
            (
                Step::ReserveStock,
                refused_with(Reason::ReleasedBeforeReserved),
            ),
            (
                Step::ReserveStock,
                Status::from(ApiError::KeyReused { key: "k".into() }),
            ),
            (
                Step::CreateShipment,
                refused_with(Reason::CancelledBeforeCreated),
            ),
            (Step::CreateShipment, refused_with(Reason::OutOfStock)),
            (
                Step::ChargePayment,
                refused_with(Reason::CancelledBeforeCharged),
            ),
            (
                Step::ReserveStock,
                Status::failed_precondition("no reason given"),
            ),
            (
                Step::CreateShipment,
                Status::invalid_argument("address.city"),
            ),
        ] {
            let out = outcome_of(step, refusal);
            assert_eq!(
                reason(&out),
                Some(FailureReason::DependencyUnavailable),
                "{step}: {out:?}"
            );
        }
    }

    #[test]
    fn what_the_order_has_under_another_key_parks_the_saga() {
        for (step, conflict) in [
            (Step::ReserveStock, Reason::OrderAlreadyReserved),
            (Step::ChargePayment, Reason::OrderAlreadyPaid),
            (Step::CreateShipment, Reason::OrderAlreadyShipped),
            (Step::CreateOrder, Reason::CheckoutAlreadyOrdered),
        ] {
            let out = outcome_of(step, refused_with(conflict));
            let Outcome::Conflict { error } = out else {
                panic!("{step}: {conflict} is a conflict, not {out:?}");
            };
            assert!(error.message.starts_with(conflict.as_str()), "{error:?}");
            assert_eq!(error.code, Some(GrpcCode(Code::FailedPrecondition)));
        }
    }
}
