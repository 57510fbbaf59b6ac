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
                payment_id: Some(e.payment_id.clone()),
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
                tracking_number: Some(e.tracking_number.clone()),
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
                tracking_number: Some(e.tracking_number.clone()),
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

/// How far along a step status is; a merge never moves a step back.
fn step_rank(status: StepStatus) -> u8 {
    match status {
        StepStatus::Pending => 0,
        StepStatus::Running => 1,
        StepStatus::Succeeded | StepStatus::Failed => 2,
        StepStatus::Compensating => 3,
        StepStatus::Compensated | StepStatus::Skipped => 4,
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

/// `transition` as it may apply to `state`: status changes that would move a step or the
/// saga back are dropped with their timestamps (a late event's count and error still
/// count), the first failure reason stays, and a checkout that ends cancelled marks the
/// steps that never ran SKIPPED.
pub fn merge(state: &SagaState, mut transition: Transition) -> Transition {
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
    transition
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saga::StepState;
    use shop_proto::events::v1 as pb;

    fn running() -> SagaState {
        SagaState {
            status: SagaStatus::Running,
            failure_reason: None,
            order_id: None,
            steps: Step::ALL
                .iter()
                .map(|s| StepState {
                    step: *s,
                    status: match s {
                        Step::PriceCart => StepStatus::Succeeded,
                        Step::CreateOrder => StepStatus::Running,
                        _ => StepStatus::Pending,
                    },
                    uncertain: false,
                })
                .collect(),
        }
    }

    fn apply(state: &mut SagaState, payload: Payload) {
        let t = on_event(&payload).expect("valid").expect("news");
        let t = merge(state, t);
        state.apply(&t);
    }

    fn checkout() -> Option<pb::Checkout> {
        Some(pb::Checkout {
            order_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
    }

    #[test]
    fn a_happy_checkout_reads_like_an_orchestrated_one() {
        let mut s = running();
        apply(
            &mut s,
            Payload::OrderPlaced(pb::OrderPlaced {
                checkout: checkout(),
            }),
        );
        apply(&mut s, Payload::PaymentCaptured(Default::default()));
        apply(&mut s, Payload::StockReserved(Default::default()));
        apply(&mut s, Payload::ShipmentCreated(Default::default()));
        assert_eq!(s.status, SagaStatus::Running);
        apply(&mut s, Payload::OrderConfirmed(Default::default()));
        assert_eq!(s.status, SagaStatus::Completed);
        assert!(s.order_id.is_some());
        assert!(s.steps.iter().all(|st| st.status == StepStatus::Succeeded));
    }

    #[test]
    fn an_undeliverable_address_unwinds_step_by_step() {
        let mut s = running();
        apply(
            &mut s,
            Payload::OrderPlaced(pb::OrderPlaced {
                checkout: checkout(),
            }),
        );
        apply(&mut s, Payload::PaymentCaptured(Default::default()));
        apply(&mut s, Payload::StockReserved(Default::default()));
        apply(
            &mut s,
            Payload::ShipmentRejected(pb::ShipmentRejected {
                checkout: None,
                failure_reason: "undeliverable_address".into(),
            }),
        );
        assert_eq!(s.status, SagaStatus::Compensating);
        assert_eq!(s.failure_reason, Some(FailureReason::UndeliverableAddress));
        assert_eq!(s.status_of(Step::ReserveStock), StepStatus::Compensating);
        apply(&mut s, Payload::StockReleased(Default::default()));
        apply(&mut s, Payload::PaymentRefunded(Default::default()));
        apply(
            &mut s,
            Payload::OrderCancelled(pb::OrderCancelled {
                checkout: None,
                failure_reason: "undeliverable_address".into(),
            }),
        );
        assert_eq!(s.status, SagaStatus::Cancelled);
        assert_eq!(s.status_of(Step::CreateShipment), StepStatus::Failed);
        assert_eq!(s.status_of(Step::ConfirmOrder), StepStatus::Skipped);
        for step in [Step::CreateOrder, Step::ChargePayment, Step::ReserveStock] {
            assert_eq!(s.status_of(step), StepStatus::Compensated, "{step}");
        }
    }

    #[test]
    fn a_late_event_never_moves_the_timeline_back() {
        let mut s = running();
        apply(
            &mut s,
            Payload::OrderPlaced(pb::OrderPlaced {
                checkout: checkout(),
            }),
        );
        apply(
            &mut s,
            Payload::PaymentDeclined(pb::PaymentDeclined {
                checkout: None,
                payment_id: "p".into(),
                failure_reason: "card_declined".into(),
            }),
        );
        apply(
            &mut s,
            Payload::OrderCancelled(pb::OrderCancelled {
                checkout: None,
                failure_reason: "card_declined".into(),
            }),
        );
        assert_eq!(s.status, SagaStatus::Cancelled);
        // OrderPlaced handled again after the end (another consumer was slow).
        apply(
            &mut s,
            Payload::OrderPlaced(pb::OrderPlaced {
                checkout: checkout(),
            }),
        );
        assert_eq!(s.status, SagaStatus::Cancelled);
        assert_eq!(s.status_of(Step::CreateOrder), StepStatus::Compensated);
        assert_eq!(s.status_of(Step::ChargePayment), StepStatus::Failed);
    }

    #[test]
    fn an_end_handled_before_the_failure_that_caused_it_still_has_its_reason() {
        let mut s = running();
        apply(
            &mut s,
            Payload::OrderPlaced(pb::OrderPlaced {
                checkout: checkout(),
            }),
        );
        apply(
            &mut s,
            Payload::OrderCancelled(pb::OrderCancelled {
                checkout: None,
                failure_reason: "card_declined".into(),
            }),
        );
        assert_eq!(s.status, SagaStatus::Cancelled);
        assert_eq!(s.failure_reason, Some(FailureReason::CardDeclined));
        apply(
            &mut s,
            Payload::PaymentDeclined(pb::PaymentDeclined {
                checkout: None,
                payment_id: String::new(),
                failure_reason: "card_declined".into(),
            }),
        );
        assert_eq!(
            s.status,
            SagaStatus::Cancelled,
            "never back to compensating"
        );
        assert_eq!(s.status_of(Step::ChargePayment), StepStatus::Failed);
    }

    #[test]
    fn the_order_id_comes_from_any_event_when_order_placed_is_late() {
        let mut s = running();
        let placed = checkout();
        apply(
            &mut s,
            Payload::OrderConfirmed(pb::OrderConfirmed {
                checkout: placed.clone(),
                tracking_number: "T1".into(),
            }),
        );
        assert_eq!(s.status, SagaStatus::Completed);
        let expected = placed.map(|c| c.order_id).unwrap_or_default();
        assert_eq!(s.order_id.map(|o| o.to_string()), Some(expected));
    }

    #[test]
    fn events_that_cannot_be_read_are_refused() {
        assert_eq!(
            on_event(&Payload::OrderPlaced(pb::OrderPlaced { checkout: None })),
            Err(BadEvent::NoCheckout("OrderPlaced"))
        );
        assert!(matches!(
            on_event(&Payload::StockRejected(pb::StockRejected {
                checkout: None,
                failure_reason: "sold out".into()
            })),
            Err(BadEvent::Reason(_))
        ));
        assert_eq!(
            on_event(&Payload::CheckoutRequested(Default::default())),
            Ok(None)
        );
    }
}
