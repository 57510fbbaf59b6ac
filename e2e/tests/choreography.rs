//! The choreographed checkout across real processes: the five binaries, their own
//! databases and a real nats-server, the checkout started through the front door with
//! `COORDINATION_MODE_CHOREOGRAPHED` and carried by events alone. Every scenario ends
//! with the same invariant check as the orchestrated suite, through the read RPCs.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use e2e::{
    Stack, StackOptions, Svc,
    clients::Clients,
    scenario::{
        all_terminal, assert_invariants, place_briefly, place_in, place_until_accepted, request,
        stack_with_options,
    },
};
use futures::future::join_all;
use platform::security::Principal;
use shop_proto::{
    checkout::v1::{self as pb, CoordinationMode},
    events::v1::{ListDeadLettersRequest, event_admin_service_client::EventAdminServiceClient},
};
use tonic::Code;

const CHOREO: CoordinationMode = CoordinationMode::Choreographed;

async fn stack_with(products: &[(&str, i64, i64)]) -> (Stack, Clients) {
    stack_with_options(StackOptions::default(), products).await
}

fn choreographed(
    key: &str,
    token: &str,
    country: &str,
    items: &[(&str, i32)],
) -> pb::PlaceOrderRequest {
    place_in(CHOREO, key, token, country, items)
}

/// Every checkout COMPLETED; otherwise the statuses and reasons of all of them.
fn assert_all_completed(checkouts: &[pb::Checkout]) {
    assert!(
        checkouts
            .iter()
            .all(|c| c.status() == pb::CheckoutStatus::Completed),
        "{:?}",
        checkouts
            .iter()
            .map(|c| (c.status(), &c.failure_reason))
            .collect::<Vec<_>>()
    );
}

fn step<'a>(c: &'a pb::Checkout, name: &str) -> &'a pb::Step {
    c.steps.iter().find(|s| s.name == name).unwrap()
}

#[tokio::test]
async fn every_outcome_by_events_alone() {
    let (stack, mut clients) = stack_with(&[("MUG", 700, 10), ("TEE", 1500, 2)]).await;
    let cases = [
        (
            choreographed("ok", "tok_visa", "FR", &[("MUG", 2), ("TEE", 1)]),
            "COMPLETED",
            "",
        ),
        (
            choreographed("declined", "tok_chargeDeclined", "FR", &[("MUG", 1)]),
            "CANCELLED",
            "card_declined",
        ),
        (
            choreographed("poor", "tok_insufficientFunds", "FR", &[("MUG", 1)]),
            "CANCELLED",
            "insufficient_funds",
        ),
        (
            choreographed("short", "tok_visa", "FR", &[("TEE", 2)]),
            "CANCELLED",
            "out_of_stock",
        ),
        (
            choreographed("antarctica", "tok_visa", "AQ", &[("MUG", 1)]),
            "CANCELLED",
            "undeliverable_address",
        ),
    ];
    let mut checkouts = Vec::new();
    for (message, status, reason) in cases {
        let key = message.idempotency_key.clone();
        let c = clients
            .checkout
            .place_order(request(message, None, Duration::from_secs(20)))
            .await
            .unwrap()
            .into_inner()
            .checkout
            .unwrap();
        assert_eq!(c.mode(), CHOREO, "{key}");
        assert_eq!(
            c.status().as_str_name(),
            format!("CHECKOUT_STATUS_{status}"),
            "{key}: {c:?}"
        );
        assert_eq!(c.failure_reason, reason, "{key}");
        checkouts.push(c);
    }
    // The timeline reads like an orchestrated one.
    let ok = &checkouts[0];
    assert!(!ok.tracking_number.is_empty() && !ok.payment_id.is_empty());
    assert!(
        ok.steps
            .iter()
            .all(|s| s.status() == pb::StepStatus::Succeeded),
        "{ok:?}"
    );
    let unwound = &checkouts[4];
    assert_eq!(
        step(unwound, "create_shipment").status(),
        pb::StepStatus::Failed
    );
    for name in ["create_order", "charge_payment", "reserve_stock"] {
        assert_eq!(
            step(unwound, name).status(),
            pb::StepStatus::Compensated,
            "{name}: {unwound:?}"
        );
    }
    assert_eq!(
        step(unwound, "confirm_order").status(),
        pb::StepStatus::Skipped
    );

    // ListCheckouts tells the modes apart.
    let listed = clients
        .checkout
        .list_checkouts(pb::ListCheckoutsRequest {
            mode: CHOREO.into(),
            page_size: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .checkouts;
    assert_eq!(listed.len(), 5);
    assert_invariants(&mut clients, &checkouts, &[("MUG", 10), ("TEE", 2)]).await;
    drop(stack);
}

#[tokio::test]
async fn a_key_names_one_checkout_in_either_mode() {
    let (_stack, mut clients) = stack_with(&[("MUG", 700, 10)]).await;
    let message = choreographed("once", "tok_visa", "FR", &[("MUG", 1)]);
    let first = clients
        .checkout
        .place_order(message.clone())
        .await
        .unwrap()
        .into_inner();
    let again = clients
        .checkout
        .place_order(message.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.checkout.unwrap().checkout_id,
        again.checkout.unwrap().checkout_id
    );
    let other_mode = pb::PlaceOrderRequest {
        mode: CoordinationMode::Orchestrated.into(),
        ..message
    };
    let refused = clients.checkout.place_order(other_mode).await.unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists);
    let checkouts = all_terminal(&mut clients).await;
    assert_eq!(checkouts.len(), 1);
    assert_invariants(&mut clients, &checkouts, &[("MUG", 10)]).await;
}

#[tokio::test]
async fn concurrent_buyers_of_scarce_stock_by_events() {
    let (_stack, mut clients) = stack_with(&[("RARE", 900, 5)]).await;
    let calls: Vec<_> = (0..24)
        .map(|i| {
            let clients = clients.clone();
            tokio::spawn(async move {
                place_until_accepted(
                    &clients,
                    choreographed(&format!("rare-{i}"), "tok_visa", "FR", &[("RARE", 1)]),
                    None,
                )
                .await
            })
        })
        .collect();
    join_all(calls).await;
    let checkouts = all_terminal(&mut clients).await;
    let completed = checkouts
        .iter()
        .filter(|c| c.status() == pb::CheckoutStatus::Completed)
        .count();
    assert_eq!(completed, 5, "exactly the stock is sold");
    assert!(
        checkouts
            .iter()
            .filter(|c| c.status() == pb::CheckoutStatus::Cancelled)
            .all(|c| c.failure_reason == "out_of_stock")
    );
    assert_invariants(&mut clients, &checkouts, &[("RARE", 5)]).await;
}

/// Starts `count` choreographed checkouts without waiting for them to end.
async fn start_many(clients: &Clients, prefix: &str, count: usize) {
    let calls: Vec<_> = (0..count)
        .map(|i| {
            let clients = clients.clone();
            let key = format!("{prefix}-{i}");
            tokio::spawn(async move {
                let message = choreographed(&key, "tok_visa", "FR", &[("MUG", 1)]);
                place_briefly(&clients, message).await;
            })
        })
        .collect();
    join_all(calls).await;
}

#[tokio::test]
async fn a_broker_restarted_amid_load_loses_no_event() {
    let (mut stack, mut clients) = stack_with(&[("MUG", 700, 100)]).await;
    start_many(&clients, "before", 15).await;
    stack.kill_nats().unwrap();
    // Checkouts accepted while the broker is down wait in the front door's outbox.
    start_many(&clients, "during", 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.restart_nats().await.unwrap();
    let checkouts = all_terminal(&mut clients).await;
    assert_eq!(checkouts.len(), 25);
    assert_all_completed(&checkouts);
    assert_invariants(&mut clients, &checkouts, &[("MUG", 100)]).await;
}

/// The broker comes back with an empty store (a lost volume) while the orders of ten
/// checkouts wait in it for a stopped payment-svc: the stream and every durable consumer
/// are created again, every outbox publishes again what it keeps (the orders' events
/// among them), and every checkout completes, each charged once.
#[tokio::test]
async fn a_broker_back_with_an_empty_store_is_repaired_and_every_checkout_completes() {
    let (mut stack, mut clients) = stack_with(&[("MUG", 700, 100)]).await;
    stack.kill(Svc::Payment);
    start_many(&clients, "stranded", 10).await;
    // Each order is placed and announced: its event sits in the stream, unconsumed.
    let mut ordered = 0;
    for _ in 0..300 {
        let listed = clients
            .checkout
            .list_checkouts(pb::ListCheckoutsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .checkouts;
        ordered = listed
            .iter()
            .filter(|c| step(c, "create_order").status() == pb::StepStatus::Succeeded)
            .count();
        if ordered == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ordered, 10, "the orders were announced");
    stack.kill_nats().unwrap();
    let store = stack.nats().store_dir().expect("the stack's own broker");
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    stack.restart_nats().await.unwrap();
    let restarted = std::time::Instant::now();
    stack.restart(Svc::Payment).await.unwrap();
    start_many(&clients, "after", 5).await;
    let checkouts = all_terminal(&mut clients).await;
    eprintln!(
        "broker back empty: every checkout ended {:?} after its restart",
        restarted.elapsed()
    );
    assert_eq!(checkouts.len(), 15);
    assert_all_completed(&checkouts);
    assert_invariants(&mut clients, &checkouts, &[("MUG", 100)]).await;
}

/// Events delivered to a consumer that then dies are unacknowledged: the broker gives
/// them to the restarted consumer once its acknowledgement wait runs out (5 s; a handler
/// still working reports progress every 2 s, so only a dead one waits it out). How long
/// the checkouts took to complete after the restart is printed, not asserted.
#[tokio::test]
async fn events_held_by_a_consumer_that_died_come_back_to_its_successor() {
    let (mut stack, mut clients) = stack_with(&[("MUG", 700, 100)]).await;
    // Stopped, payment-svc's pending pulls still receive events it will never settle.
    stack.pause(Svc::Payment).unwrap();
    start_many(&clients, "held", 6).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.kill(Svc::Payment);
    stack.restart(Svc::Payment).await.unwrap();
    let restarted = std::time::Instant::now();
    let checkouts = all_terminal(&mut clients).await;
    eprintln!(
        "events held by a dead consumer: every checkout completed {:?} after its restart",
        restarted.elapsed()
    );
    assert_all_completed(&checkouts);
    assert_invariants(&mut clients, &checkouts, &[("MUG", 100)]).await;
}

#[tokio::test]
async fn services_killed_amid_their_handlers_finish_the_work_after_restart() {
    let (mut stack, mut clients) = stack_with(&[("MUG", 700, 100)]).await;
    start_many(&clients, "load", 20).await;
    // SIGKILL mid-flight: a handler's transaction dies uncommitted (redelivered later),
    // or a relay dies between publishing and marking its rows sent (published again,
    // absorbed by the stream's duplicate window and the consumers' inbox).
    for svc in [Svc::Payment, Svc::Shipping] {
        stack.kill(svc);
        start_many(&clients, &format!("while-{}", svc.binary()), 5).await;
        stack.restart(svc).await.unwrap();
    }
    // inventory-svc also prices carts for the front door (a synchronous read), so new
    // checkouts wait for it; the ones in flight wait in the broker.
    start_many(&clients, "before-inventory", 5).await;
    stack.kill(Svc::Inventory);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stack.restart(Svc::Inventory).await.unwrap();
    let checkouts = all_terminal(&mut clients).await;
    assert_eq!(checkouts.len(), 35);
    assert!(
        checkouts
            .iter()
            .all(|c| c.status() == pb::CheckoutStatus::Completed)
    );
    assert_invariants(&mut clients, &checkouts, &[("MUG", 100)]).await;
}

#[tokio::test]
async fn a_poison_message_is_parked_and_listed() {
    let (stack, _clients) = stack_with(&[("MUG", 700, 10)]).await;
    // The broker takes order events from order-svc's certificate only.
    let order_svc = stack.pki().unwrap().security(Principal::OrderSvc).unwrap();
    let client =
        platform::events::broker::client(&stack.nats_url(), "test", order_svc.tls().as_deref())
            .await
            .unwrap();
    let js = async_nats::jetstream::new(client);
    js.publish("shop.events.order.OrderPlaced", "not an envelope".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut admin = EventAdminServiceClient::new(stack.channel(Svc::Payment));
    for _ in 0..100 {
        let parked = admin
            .list_dead_letters(ListDeadLettersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .dead_letters;
        if let Some(letter) = parked.first() {
            assert_eq!(letter.subject, "shop.events.order.OrderPlaced");
            assert!(letter.reason.contains("not an Envelope"), "{letter:?}");
            assert_eq!(letter.payload, b"not an envelope");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the poison message was never parked");
}

#[tokio::test]
async fn a_checkout_that_stops_moving_is_flagged_stalled_until_it_moves_again() {
    let options = StackOptions {
        orchestrator_env: vec![("STALL_AFTER".into(), "1s".into())],
        ..StackOptions::default()
    };
    let (mut stack, mut clients) = stack_with_options(options, &[("MUG", 700, 10)]).await;
    stack.kill(Svc::Payment);
    let message = choreographed("stuck", "tok_visa", "FR", &[("MUG", 1)]);
    let placed = place_briefly(&clients, message).await;
    assert_eq!(placed.status(), pb::CheckoutStatus::Running);
    assert!(!placed.stalled, "just started");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let get = pb::GetCheckoutRequest {
        checkout_id: placed.checkout_id.clone(),
        order_id: String::new(),
    };
    let stuck = clients
        .checkout
        .get_checkout(get.clone())
        .await
        .unwrap()
        .into_inner()
        .checkout
        .unwrap();
    assert!(stuck.stalled, "no event for over a second: {stuck:?}");
    assert_eq!(
        step(&stuck, "charge_payment").status(),
        pb::StepStatus::Running
    );

    stack.restart(Svc::Payment).await.unwrap();
    let checkouts = all_terminal(&mut clients).await;
    assert_eq!(checkouts[0].status(), pb::CheckoutStatus::Completed);
    assert!(!checkouts[0].stalled);
    assert_invariants(&mut clients, &checkouts, &[("MUG", 10)]).await;
}
