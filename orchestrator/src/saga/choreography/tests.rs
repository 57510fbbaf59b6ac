//! Tests of `choreography`, kept apart so the rules read on their own. Over 400 lines
//! because each flow's events are tried in every order they can arrive in, and forged
//! ones against each recorded state: one table of cases per flow, read together.

use super::*;
use crate::saga::StepState;
use shop_proto::events::v1 as pb;

fn running() -> Recorded {
    Recorded {
        state: SagaState {
            status: SagaStatus::Running,
            resume_from: None,
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
