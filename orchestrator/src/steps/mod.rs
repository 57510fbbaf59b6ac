//! The checkout's steps, one module each: how its request is built from the saga, the
//! forward call, its compensation, and what a refusal means to the customer. The engine
//! only sequences them ([`forward`], [`compensate`]); the saga's rules decide what the
//! outcomes mean.
//!
//! Each call goes through its downstream's resilience stack (`resilience`), under the
//! step's idempotency key, so a retry or a replay after a crash can never act twice. A
//! compensation names its target by the forward call's key, so it also blocks a forward
//! call that has not arrived yet.

pub mod charge_payment;
pub mod confirm_order;
pub mod create_order;
pub mod create_shipment;
pub mod reserve_stock;

use shop_proto::{checkout::v1::PlaceOrderRequest, inventory::v1::PriceCartResponse};
use tonic::Status;
use tower::BoxError;

use crate::{
    classify,
    downstream::Clients,
    ids::{IdempotencyKey, OrderId, SagaId},
    resilience::{Call, StepService, send},
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

/// Classifies a forward call's result: a reply is read by `done`, a refusal code gets the
/// step's `refusal` reason, anything else (retries exhausted, the breaker open) is
/// unavailable.
fn outcome<R>(
    result: Result<R, BoxError>,
    refusal: fn(&Status) -> FailureReason,
    done: impl FnOnce(R) -> Outcome,
) -> Outcome {
    match result {
        Ok(reply) => done(reply),
        Err(error) => match error.downcast_ref::<Status>() {
            Some(status) if classify::is_refusal(status.code()) => Outcome::Refused {
                reason: refusal(status),
                error: StepError::new(status.message(), Some(status.code())),
            },
            _ => Outcome::Unavailable {
                error: failure(&error),
            },
        },
    }
}

/// A compensation's result for the saga's record.
fn undone<R>(result: Result<R, BoxError>) -> Result<(), StepError> {
    result.map(drop).map_err(|error| failure(&error))
}

fn failure(error: &BoxError) -> StepError {
    let (message, code) = classify::describe(error);
    StepError::new(message, Some(code))
}
