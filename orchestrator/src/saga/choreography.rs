//! A choreographed checkout's timeline, from its events: which step each event ends or
//! starts, and what it says about the checkout. Pure, like `rules`: the tracker does the
//! I/O. The same steps and statuses as an orchestrated saga, so both modes read alike.
//!
//! | event | steps |
//! |---|---|
//! | OrderPlaced | create_order succeeded, charge_payment running |
//! | PaymentCaptured / PaymentDeclined | charge_payment succeeded / failed (compensating) |
//! | StockReserved / StockRejected | reserve_stock succeeded / failed; refund starts |
//! | ShipmentCreated / ShipmentRejected | create_shipment succeeded / failed; release starts |
//! | StockReleased | reserve_stock compensated; refund starts |
//! | PaymentRefunded | charge_payment compensated; cancellation starts |
//! | OrderConfirmed | confirm_order succeeded: COMPLETED |
//! | OrderCancelled | create_order compensated: CANCELLED |
//!
//! Events of one checkout may be handled out of order (each subject has its own
//! consumer), so [`merge`] only ever moves a step or the saga forward: a late event never
//! undoes what a later one recorded.
//!
//! It also trusts an event no further than the timeline bears out: a checkout's order
//! id, payment id and tracking number are set once, a checkout that ended never moves
//! again, and no legitimate run both completes and fails. An event that says otherwise
//! (a forgery, a bug, an operator's slip) is a [`Contradiction`]: the tracker parks it
//! with that reason and applies none of it.

use platform::events::envelope::checkout_of;
use shop_proto::events::v1::envelope::Payload;

use super::{
    FailureReason, SagaChange, SagaStatus, Step, StepChange, StepError, StepStatus,
    rules::{SagaState, Transition},
};
use crate::ids::OrderId;

/// Why an event cannot be applied to a checkout's timeline.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadEvent {
    #[error("{0} carries no checkout")]
    NoCheckout(&'static str),
    #[error("order_id {0:?} is not a UUID")]
    OrderId(String),
    #[error("failure_reason {0:?} is not one of the checkout's reasons")]
    Reason(String),
}

/// Why an event is not applied: it contradicts what the tracker recorded of the checkout.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Contradiction {
    #[error("the checkout's order is {recorded}, the event names order {named}")]
    OrderId { recorded: OrderId, named: OrderId },
    #[error("the checkout's {fact} is {recorded:?}, the event names {named:?}")]
    Fact {
        fact: &'static str,
        recorded: String,
        named: String,
    },
    #[error("the checkout is COMPLETED; an event of a failure or an undoing contradicts it")]
    FailureOfCompleted,
    #[error("the checkout is {0}, on the way of a failure; its completion contradicts it")]
    CompletionOfFailed(SagaStatus),
}

/// What the tracker has recorded of a checkout: its timeline, and the facts its events
/// named (each set once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub state: SagaState,
    pub payment_id: Option<String>,
    pub tracking_number: Option<String>,
}

/// What `payload` says about the checkout's steps; `None` for an event that says
/// nothing new (CheckoutRequested, which the front door itself recorded).
pub fn on_event(payload: &Payload) -> Result<Option<Transition>, BadEvent> {
    use Step::*;
    let t = match payload {
        Payload::CheckoutRequested(_) => return Ok(None),
        Payload::OrderPlaced(e) => {
            let checkout = e
                .checkout
                .as_ref()
                .ok_or(BadEvent::NoCheckout("OrderPlaced"))?;
            let order_id = uuid::Uuid::try_parse(&checkout.order_id)
                .map_err(|_| BadEvent::OrderId(checkout.order_id.clone()))?;
            Transition {
                saga: SagaChange {
                    order_id: Some(OrderId::from(order_id)),
                    ..SagaChange::default()
                },
                steps: vec![succeeded(CreateOrder), StepChange::start(ChargePayment)],
            }
        }
        Payload::PaymentCaptured(e) => Transition {
            saga: SagaChange {
                payment_id: named(&e.payment_id),
                ..SagaChange::default()
            },
            steps: vec![succeeded(ChargePayment), StepChange::start(ReserveStock)],
        },
        Payload::PaymentDeclined(e) => failed(
            ChargePayment,
            &e.failure_reason,
            format!("payment {} declined: {}", e.payment_id, e.failure_reason),
            None,
        )?,
        Payload::StockReserved(_) => Transition {
            saga: SagaChange::default(),
            steps: vec![succeeded(ReserveStock), StepChange::start(CreateShipment)],
        },
        Payload::StockRejected(e) => failed(
            ReserveStock,
            &e.failure_reason,
            "not enough stock".into(),
            Some(ChargePayment),
        )?,
        Payload::ShipmentCreated(e) => Transition {
            saga: SagaChange {
                tracking_number: named(&e.tracking_number),
                ..SagaChange::default()
            },
            steps: vec![succeeded(CreateShipment), StepChange::start(ConfirmOrder)],
        },
        Payload::ShipmentRejected(e) => failed(
            CreateShipment,
            &e.failure_reason,
            "the address is not served".into(),
            Some(ReserveStock),
        )?,
        Payload::StockReleased(_) => Transition {
            saga: SagaChange::default(),
            steps: vec![compensated(ReserveStock), compensating(ChargePayment)],
        },
        Payload::PaymentRefunded(_) => Transition {
            saga: SagaChange::default(),
            steps: vec![compensated(ChargePayment), compensating(CreateOrder)],
        },
        // The ends carry what the events before them said (the tracking number, the
        // reason), so an end handled before those events still reads whole.
        Payload::OrderConfirmed(e) => Transition {
            saga: SagaChange {
                status: Some(SagaStatus::Completed),
                tracking_number: named(&e.tracking_number),
                ..SagaChange::default()
            },
            steps: vec![succeeded(ConfirmOrder)],
        },
        Payload::OrderCancelled(e) => Transition {
            saga: SagaChange {
                status: Some(SagaStatus::Cancelled),
                failure_reason: Some(reason(&e.failure_reason)?),
                ..SagaChange::default()
            },
            steps: vec![compensated(CreateOrder)],
        },
    };
    Ok(Some(with_order_id(t, payload)))
}

/// Every event after OrderPlaced carries the order id: taken from whichever arrives
/// first, since a consumer that died holding OrderPlaced redelivers it only after its
/// ack wait, while later events (other consumers) go on.
fn with_order_id(mut t: Transition, payload: &Payload) -> Transition {
    if t.saga.order_id.is_none() {
        t.saga.order_id = checkout_of(payload)
            .and_then(|c| uuid::Uuid::try_parse(&c.order_id).ok())
            .map(OrderId::from);
    }
    t
}

/// A fact an event names; an empty one names nothing.
fn named(fact: &str) -> Option<String> {
    Some(fact.to_owned()).filter(|f| !f.is_empty())
}

fn reason(reason: &str) -> Result<FailureReason, BadEvent> {
    FailureReason::parse(reason).map_err(|_| BadEvent::Reason(reason.to_owned()))
}

fn succeeded(step: Step) -> StepChange {
    StepChange {
        status: Some(StepStatus::Succeeded),
        add_attempts: 1,
        end: true,
        ..StepChange::of(step)
    }
}

fn compensating(step: Step) -> StepChange {
    StepChange {
        status: Some(StepStatus::Compensating),
        ..StepChange::of(step)
    }
}

fn compensated(step: Step) -> StepChange {
    StepChange {
        status: Some(StepStatus::Compensated),
        add_compensation_attempts: 1,
        compensation_end: true,
        ..StepChange::of(step)
    }
}

/// A refusal: the step failed with the event's reason, the saga compensates, and the
/// compensation of `undo_next` (the last step that took effect) starts.
fn failed(
    step: Step,
    reason: &str,
    message: String,
    undo_next: Option<Step>,
) -> Result<Transition, BadEvent> {
    let reason = self::reason(reason)?;
    let mut steps = vec![StepChange {
        status: Some(StepStatus::Failed),
        uncertain: Some(false),
        add_attempts: 1,
        end: true,
        error: Some(StepError::new(message, None)),
        ..StepChange::of(step)
    }];
    // A declined card undoes the order next; later failures undo what came before.
    steps.push(compensating(undo_next.unwrap_or(Step::CreateOrder)));
    Ok(Transition {
        saga: SagaChange {
            status: Some(SagaStatus::Compensating),
            failure_reason: Some(reason),
            ..SagaChange::default()
        },
        steps,
    })
}

/// How far along a step status is; a merge never moves a step back. SKIPPED ranks with
/// PENDING: it only says that no event of the step had come when the checkout ended, and
/// a late one showing that the step ran replaces it, so every order of the events ends
/// on the same timeline.
fn step_rank(status: StepStatus) -> u8 {
    match status {
        StepStatus::Pending | StepStatus::Skipped => 0,
        StepStatus::Running => 1,
        StepStatus::Succeeded | StepStatus::Failed => 2,
        StepStatus::Compensating => 3,
        StepStatus::Compensated => 4,
    }
}

fn saga_rank(status: SagaStatus) -> u8 {
    match status {
        SagaStatus::Running => 0,
        SagaStatus::Compensating => 1,
        // The tracker never parks a checkout; ranked as an end so no event moves it.
        SagaStatus::Completed | SagaStatus::Cancelled | SagaStatus::NeedsAttention => 2,
    }
}

/// `transition` as it may apply to what is `recorded`, or why it may not apply at all
/// ([`contradiction`]). Status changes that would move a step or the saga back are
/// dropped with their timestamps (a late event's count and error still count), facts
/// already recorded are not written again, the first failure reason stays, and a
/// checkout that ends cancelled marks the steps that never ran SKIPPED.
pub fn merge(recorded: &Recorded, mut transition: Transition) -> Result<Transition, Contradiction> {
    if let Some(contradiction) = contradiction(recorded, &transition) {
        return Err(contradiction);
    }
    let state = &recorded.state;
    let saga = &mut transition.saga;
    if state.order_id.is_some() {
        saga.order_id = None;
    }
    if recorded.payment_id.is_some() {
        saga.payment_id = None;
    }
    if recorded.tracking_number.is_some() {
        saga.tracking_number = None;
    }
    if transition
        .saga
        .status
        .is_some_and(|to| saga_rank(to) <= saga_rank(state.status))
    {
        transition.saga.status = None;
    }
    if state.failure_reason.is_some() {
        transition.saga.failure_reason = None;
    }
    for change in &mut transition.steps {
        let now = state.status_of(change.step);
        if change
            .status
            .is_some_and(|to| step_rank(to) <= step_rank(now))
        {
            change.status = None;
            change.start = false;
            change.end = false;
            change.compensation_end = false;
        }
    }
    if transition.saga.status == Some(SagaStatus::Cancelled) {
        let mut after = state.clone();
        after.apply(&transition);
        transition.steps.extend(
            after
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Pending)
                .map(|s| StepChange {
                    status: Some(StepStatus::Skipped),
                    ..StepChange::of(s.step)
                }),
        );
    }
    Ok(transition)
}

/// How `transition` contradicts what is `recorded`, if it does: it names another order,
/// payment or shipment than the one recorded, fails or undoes a COMPLETED checkout, or
/// completes one that failed. No legitimate order of a checkout's events does any of it
/// (`every_order_of_a_checkouts_events_reads_the_same`).
fn contradiction(recorded: &Recorded, transition: &Transition) -> Option<Contradiction> {
    let (state, saga) = (&recorded.state, &transition.saga);
    if let (Some(recorded), Some(named)) = (state.order_id, saga.order_id)
        && recorded != named
    {
        return Some(Contradiction::OrderId { recorded, named });
    }
    let facts = [
        ("payment id", &recorded.payment_id, &saga.payment_id),
        (
            "tracking number",
            &recorded.tracking_number,
            &saga.tracking_number,
        ),
    ];
    for (fact, recorded, named) in facts {
        if let (Some(recorded), Some(named)) = (recorded, named)
            && recorded != named
        {
            return Some(Contradiction::Fact {
                fact,
                recorded: recorded.clone(),
                named: named.clone(),
            });
        }
    }
    let fails = saga.failure_reason.is_some()
        || matches!(
            saga.status,
            Some(SagaStatus::Compensating | SagaStatus::Cancelled)
        )
        || transition.steps.iter().any(|c| {
            matches!(
                c.status,
                Some(StepStatus::Failed | StepStatus::Compensating | StepStatus::Compensated)
            )
        });
    let failed = state.failure_reason.is_some()
        || matches!(
            state.status,
            SagaStatus::Compensating | SagaStatus::Cancelled
        );
    if state.status == SagaStatus::Completed && fails {
        return Some(Contradiction::FailureOfCompleted);
    }
    if failed && saga.status == Some(SagaStatus::Completed) {
        return Some(Contradiction::CompletionOfFailed(state.status));
    }
    None
}

#[cfg(test)]
mod tests;
