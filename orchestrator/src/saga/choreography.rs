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
mod tests {
    use super::*;
    use crate::saga::StepState;
    use shop_proto::events::v1 as pb;

    fn running() -> Recorded {
        Recorded {
            state: SagaState {
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
            },
            payment_id: None,
            tracking_number: None,
        }
    }

    /// Merges the event into `recorded` as the tracker and the store do, or says why not.
    fn try_apply(recorded: &mut Recorded, payload: &Payload) -> Result<(), Contradiction> {
        let t = on_event(payload).expect("valid").expect("news");
        let t = merge(recorded, t)?;
        recorded.state.apply(&t);
        if let Some(payment_id) = &t.saga.payment_id {
            recorded.payment_id = Some(payment_id.clone());
        }
        if let Some(tracking_number) = &t.saga.tracking_number {
            recorded.tracking_number = Some(tracking_number.clone());
        }
        Ok(())
    }

    fn apply(recorded: &mut Recorded, payload: Payload) {
        try_apply(recorded, &payload).expect("no contradiction");
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
        assert_eq!(s.state.status, SagaStatus::Running);
        apply(&mut s, Payload::OrderConfirmed(Default::default()));
        assert_eq!(s.state.status, SagaStatus::Completed);
        assert!(s.state.order_id.is_some());
        assert!(
            s.state
                .steps
                .iter()
                .all(|st| st.status == StepStatus::Succeeded)
        );
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
        assert_eq!(s.state.status, SagaStatus::Compensating);
        assert_eq!(
            s.state.failure_reason,
            Some(FailureReason::UndeliverableAddress)
        );
        assert_eq!(
            s.state.status_of(Step::ReserveStock),
            StepStatus::Compensating
        );
        apply(&mut s, Payload::StockReleased(Default::default()));
        apply(&mut s, Payload::PaymentRefunded(Default::default()));
        apply(
            &mut s,
            Payload::OrderCancelled(pb::OrderCancelled {
                checkout: None,
                failure_reason: "undeliverable_address".into(),
            }),
        );
        assert_eq!(s.state.status, SagaStatus::Cancelled);
        assert_eq!(s.state.status_of(Step::CreateShipment), StepStatus::Failed);
        assert_eq!(s.state.status_of(Step::ConfirmOrder), StepStatus::Skipped);
        for step in [Step::CreateOrder, Step::ChargePayment, Step::ReserveStock] {
            assert_eq!(s.state.status_of(step), StepStatus::Compensated, "{step}");
        }
    }

    #[test]
    fn a_late_event_never_moves_the_timeline_back() {
        let mut s = running();
        let placed = checkout();
        apply(
            &mut s,
            Payload::OrderPlaced(pb::OrderPlaced {
                checkout: placed.clone(),
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
        assert_eq!(s.state.status, SagaStatus::Cancelled);
        // OrderPlaced handled again after the end (another consumer was slow).
        apply(
            &mut s,
            Payload::OrderPlaced(pb::OrderPlaced { checkout: placed }),
        );
        assert_eq!(s.state.status, SagaStatus::Cancelled);
        assert_eq!(
            s.state.status_of(Step::CreateOrder),
            StepStatus::Compensated
        );
        assert_eq!(s.state.status_of(Step::ChargePayment), StepStatus::Failed);
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
        assert_eq!(s.state.status, SagaStatus::Cancelled);
        assert_eq!(s.state.failure_reason, Some(FailureReason::CardDeclined));
        apply(
            &mut s,
            Payload::PaymentDeclined(pb::PaymentDeclined {
                checkout: None,
                payment_id: String::new(),
                failure_reason: "card_declined".into(),
            }),
        );
        assert_eq!(
            s.state.status,
            SagaStatus::Cancelled,
            "never back to compensating"
        );
        assert_eq!(s.state.status_of(Step::ChargePayment), StepStatus::Failed);
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
        assert_eq!(s.state.status, SagaStatus::Completed);
        let expected = placed.map(|c| c.order_id).unwrap_or_default();
        assert_eq!(s.state.order_id.map(|o| o.to_string()), Some(expected));
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

    // ---- every order of a checkout's events -----------------------------------------

    /// Every ordering of `items` (Heap's algorithm).
    fn orders<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        fn go<T: Clone>(k: usize, items: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
            if k <= 1 {
                out.push(items.clone());
                return;
            }
            for i in 0..k - 1 {
                go(k - 1, items, out);
                items.swap(if k.is_multiple_of(2) { i } else { 0 }, k - 1);
            }
            go(k - 1, items, out);
        }
        let mut out = Vec::new();
        go(items.len(), &mut items.to_vec(), &mut out);
        out
    }

    /// The events of one checkout as its services emit them, each carrying the checkout
    /// with its order id (as every event after OrderPlaced does).
    struct Run {
        checkout: pb::Checkout,
    }

    impl Run {
        fn new() -> Self {
            Self {
                checkout: pb::Checkout {
                    checkout_id: uuid::Uuid::now_v7().to_string(),
                    order_id: uuid::Uuid::now_v7().to_string(),
                    ..Default::default()
                },
            }
        }

        fn c(&self) -> Option<pb::Checkout> {
            Some(self.checkout.clone())
        }

        fn placed(&self) -> Payload {
            Payload::OrderPlaced(pb::OrderPlaced { checkout: self.c() })
        }

        fn captured(&self) -> Payload {
            Payload::PaymentCaptured(pb::PaymentCaptured {
                checkout: self.c(),
                payment_id: "pay-1".into(),
            })
        }

        fn declined(&self) -> Payload {
            Payload::PaymentDeclined(pb::PaymentDeclined {
                checkout: self.c(),
                payment_id: "pay-1".into(),
                failure_reason: "card_declined".into(),
            })
        }

        fn reserved(&self) -> Payload {
            Payload::StockReserved(pb::StockReserved {
                checkout: self.c(),
                reservation_id: "res-1".into(),
            })
        }

        fn rejected(&self) -> Payload {
            Payload::StockRejected(pb::StockRejected {
                checkout: self.c(),
                failure_reason: "out_of_stock".into(),
            })
        }

        fn shipped(&self) -> Payload {
            Payload::ShipmentCreated(pb::ShipmentCreated {
                checkout: self.c(),
                tracking_number: "TRK-1".into(),
            })
        }

        fn unshippable(&self) -> Payload {
            Payload::ShipmentRejected(pb::ShipmentRejected {
                checkout: self.c(),
                failure_reason: "undeliverable_address".into(),
            })
        }

        fn released(&self) -> Payload {
            Payload::StockReleased(pb::StockReleased {
                checkout: self.c(),
                failure_reason: "undeliverable_address".into(),
            })
        }

        fn refunded(&self, reason: &str) -> Payload {
            Payload::PaymentRefunded(pb::PaymentRefunded {
                checkout: self.c(),
                payment_id: "pay-1".into(),
                failure_reason: reason.into(),
            })
        }

        fn confirmed(&self, tracking_number: &str) -> Payload {
            Payload::OrderConfirmed(pb::OrderConfirmed {
                checkout: self.c(),
                tracking_number: tracking_number.into(),
            })
        }

        fn cancelled(&self, reason: &str) -> Payload {
            Payload::OrderCancelled(pb::OrderCancelled {
                checkout: self.c(),
                failure_reason: reason.into(),
            })
        }
    }

    /// What must hold after every event, whatever came before: an ended checkout keeps
    /// its status, a set order id stays, and a COMPLETED checkout has no failure reason.
    fn check_step(before: &Recorded, after: &Recorded) {
        if before.state.status.is_terminal() {
            assert_eq!(after.state.status, before.state.status, "an end moved");
        }
        if before.state.order_id.is_some() {
            assert_eq!(
                after.state.order_id, before.state.order_id,
                "order id moved"
            );
        }
        assert!(
            after.state.status != SagaStatus::Completed || after.state.failure_reason.is_none(),
            "COMPLETED with a failure reason: {after:?}"
        );
    }

    /// Merges `events` in order; returns the timeline and how many were contradictions.
    fn run_in(events: &[Payload]) -> (Recorded, usize) {
        let mut recorded = running();
        let mut parked = 0;
        for event in events {
            let before = recorded.clone();
            match try_apply(&mut recorded, event) {
                Ok(()) => check_step(&before, &recorded),
                Err(_) => {
                    assert_eq!(recorded, before, "a contradiction changed nothing");
                    parked += 1;
                }
            }
        }
        (recorded, parked)
    }

    #[test]
    fn every_order_of_a_checkouts_events_reads_the_same() {
        let r = Run::new();
        let flows = [
            vec![
                r.placed(),
                r.captured(),
                r.reserved(),
                r.shipped(),
                r.confirmed("TRK-1"),
            ],
            vec![r.placed(), r.declined(), r.cancelled("card_declined")],
            vec![
                r.placed(),
                r.captured(),
                r.rejected(),
                r.refunded("out_of_stock"),
                r.cancelled("out_of_stock"),
            ],
            vec![
                r.placed(),
                r.captured(),
                r.reserved(),
                r.unshippable(),
                r.released(),
                r.refunded("undeliverable_address"),
                r.cancelled("undeliverable_address"),
            ],
        ];
        for flow in flows {
            let (expected, parked) = run_in(&flow);
            assert_eq!(parked, 0);
            assert!(expected.state.status.is_terminal(), "{expected:?}");
            assert_eq!(
                expected.state.order_id.map(|o| o.to_string()),
                Some(r.checkout.order_id.clone())
            );
            let all = orders(&flow);
            assert_eq!(all.len(), (1..=flow.len()).product::<usize>());
            for order in all {
                let (got, parked) = run_in(&order);
                assert_eq!(parked, 0, "a legitimate order parked an event: {order:?}");
                assert_eq!(
                    got, expected,
                    "the timeline depends on the order: {order:?}"
                );
            }
        }
    }

    #[test]
    fn a_forged_completion_in_any_order_never_reads_completed_and_failed() {
        let r = Run::new();
        let events = [
            r.placed(),
            r.declined(),
            r.cancelled("card_declined"),
            r.confirmed("FORGED"),
        ];
        for order in orders(&events) {
            let (got, parked) = run_in(&order);
            assert!(parked >= 1, "nothing parked: {order:?}");
            match got.state.status {
                // The forgery came before the failure: the failure is what is parked.
                SagaStatus::Completed => {
                    assert_eq!(got.state.failure_reason, None);
                    assert_eq!(parked, 2, "{order:?}");
                }
                SagaStatus::Cancelled => {
                    assert_eq!(got.state.failure_reason, Some(FailureReason::CardDeclined));
                    assert_eq!(got.tracking_number, None, "{order:?}");
                }
                other => panic!("{other} after every event: {order:?}"),
            }
        }
    }

    #[test]
    fn an_event_naming_another_order_or_shipment_is_parked_in_any_order() {
        let r = Run::new();
        let forger = Run::new();
        let mut events = vec![r.placed(), r.captured(), r.reserved(), r.shipped()];
        events.push(forger.placed());
        events.push(r.confirmed("TRK-2"));
        for order in orders(&events) {
            let (got, parked) = run_in(&order);
            // Whichever order id came first stays (`check_step`); every event naming the
            // other, and the confirmation naming another tracking number, is parked.
            assert!(parked >= 1, "{order:?}");
            assert!(got.state.order_id.is_some());
        }
        let (got, parked) = run_in(&events);
        assert_eq!(
            parked, 2,
            "the forged OrderPlaced and the other tracking number"
        );
        assert_eq!(
            got.state.order_id.map(|o| o.to_string()),
            Some(r.checkout.order_id.clone())
        );
        assert_eq!(got.tracking_number.as_deref(), Some("TRK-1"));
    }

    #[test]
    fn a_contradiction_says_what_was_recorded_and_what_the_event_named() {
        let r = Run::new();
        let mut recorded = running();
        apply(&mut recorded, r.confirmed("TRK-1"));
        let failure = try_apply(&mut recorded, &r.declined()).unwrap_err();
        assert_eq!(failure, Contradiction::FailureOfCompleted);
        let other = Run::new();
        let moved = try_apply(&mut recorded, &other.placed()).unwrap_err();
        assert!(
            moved
                .to_string()
                .contains(&format!("order is {}", r.checkout.order_id)),
            "{moved}"
        );
        let mut failed = running();
        apply(&mut failed, r.declined());
        assert_eq!(
            try_apply(&mut failed, &r.confirmed("TRK-1")),
            Err(Contradiction::CompletionOfFailed(SagaStatus::Compensating))
        );
    }
}
