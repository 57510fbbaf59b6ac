//! The saga across real processes: five binaries, their own databases, real sockets.
//! Crashes are real too: kill -9, SIGSTOP/SIGCONT, restarts. Every scenario ends by
//! checking the invariants of docs/CONTRACT.md through the services' read RPCs.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use e2e::{
    Svc,
    scenario::{
        all_terminal, assert_invariants, options, place, place_until_accepted, request, stack_with,
        stack_with_options,
    },
};
use futures::future::join_all;
use platform::testing::bad_fields;
use shop_proto::checkout::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn every_saga_outcome_across_real_processes() {
    let (stack, mut clients) = stack_with(&[("MUG", 700, 10), ("TEE", 1500, 2)]).await;
    let cases = [
        (
            place("ok", "tok_visa", "FR", &[("MUG", 2), ("TEE", 1)]),
            None,
            "COMPLETED",
            "",
        ),
        (
            place("declined", "tok_chargeDeclined", "FR", &[("MUG", 1)]),
            None,
            "CANCELLED",
            "card_declined",
        ),
        (
            place("poor", "tok_insufficientFunds", "FR", &[("MUG", 1)]),
            None,
            "CANCELLED",
            "insufficient_funds",
        ),
        (
            place("short", "tok_visa", "FR", &[("TEE", 2)]),
            None,
            "CANCELLED",
            "out_of_stock",
        ),
        (
            place("antarctica", "tok_visa", "AQ", &[("MUG", 1)]),
            None,
            "CANCELLED",
            "undeliverable_address",
        ),
        (
            place("flaky", "tok_visa", "FR", &[("MUG", 1)]),
            Some("svc=payment-svc,method=Charge,code=unavailable,times=2"),
            "COMPLETED",
            "",
        ),
    ];
    let mut checkouts = Vec::new();
    for (message, fault, status, reason) in cases {
        let key = message.idempotency_key.clone();
        let c = clients
            .checkout
            .place_order(request(message, fault, Duration::from_secs(20)))
            .await
            .unwrap()
            .into_inner()
            .checkout
            .unwrap();
        assert_eq!(
            c.status().as_str_name(),
            format!("CHECKOUT_STATUS_{status}"),
            "{key}: {c:?}"
        );
        assert_eq!(c.failure_reason, reason, "{key}");
        checkouts.push(c);
    }
    assert_invariants(&mut clients, &checkouts, &[("MUG", 10), ("TEE", 2)]).await;
    drop(stack);
}

#[tokio::test]
async fn an_orchestrator_killed_mid_flight_finishes_every_checkout_after_restart() {
    // The test is about the kill, not about timeouts: on a busy machine 30 shipments held
    // 300 ms each once outlasted the usual 500 ms attempt timeout often enough to open the
    // breaker past a 3 s step deadline. Room enough that only the kill is in the way.
    let mut options = options();
    options.orchestrator_env.extend([
        ("ATTEMPT_TIMEOUT".into(), "3s".into()),
        ("STEP_DEADLINE".into(), "20s".into()),
    ]);
    let (mut stack, mut clients) = stack_with_options(options, &[("MUG", 700, 100)]).await;
    // Slow shipments hold the checkouts in flight when the orchestrator dies.
    let fault = "svc=shipping-svc,method=CreateShipment,before_ms=300";
    let calls: Vec<_> = (0..30)
        .map(|i| {
            let clients = clients.clone();
            tokio::spawn(async move {
                place_until_accepted(
                    &clients,
                    place(&format!("crash-{i}"), "tok_visa", "FR", &[("MUG", 1)]),
                    Some(fault),
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    stack.kill(Svc::Orchestrator);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stack.restart(Svc::Orchestrator).await.unwrap();
    // Clients retry with the same keys: nobody is charged twice.
    let placed: Vec<pb::Checkout> = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let checkouts = all_terminal(&mut clients).await;
    assert_eq!(checkouts.len(), 30, "one checkout per key");
    assert!(
        placed
            .iter()
            .all(|p| checkouts.iter().any(|c| c.checkout_id == p.checkout_id))
    );
    assert!(
        checkouts
            .iter()
            .all(|c| c.status() == pb::CheckoutStatus::Completed)
    );
    assert_invariants(&mut clients, &checkouts, &[("MUG", 100)]).await;
}

#[tokio::test]
async fn a_dead_payment_service_and_a_hung_inventory_end_in_clean_compensations() {
    let (mut stack, mut clients) = stack_with(&[("MUG", 700, 50)]).await;

    // payment-svc dies: charges fail, the refunds that compensate them wait for it.
    stack.kill(Svc::Payment);
    let calls: Vec<_> = (0..4)
        .map(|i| {
            let clients = clients.clone();
            tokio::spawn(async move {
                let mut client = clients.checkout.clone();
                client
                    .place_order(request(
                        place(&format!("nopay-{i}"), "tok_visa", "FR", &[("MUG", 1)]),
                        None,
                        Duration::from_secs(6),
                    ))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stack.restart(Svc::Payment).await.unwrap();
    for call in join_all(calls).await {
        call.unwrap().unwrap();
    }
    // The refunds get through once it is back, and close its circuit breaker again.
    all_terminal(&mut clients).await;

    // inventory-svc hangs (SIGSTOP) while charges are in flight: reservations time out,
    // the saga compensates, and the releases wait until inventory answers again.
    let fault = "svc=payment-svc,method=Charge,before_ms=300";
    let calls: Vec<_> = (0..4)
        .map(|i| {
            let clients = clients.clone();
            tokio::spawn(async move {
                let mut client = clients.checkout.clone();
                client
                    .place_order(request(
                        place(&format!("hung-{i}"), "tok_visa", "FR", &[("MUG", 1)]),
                        Some(fault),
                        Duration::from_secs(5),
                    ))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    stack.pause(Svc::Inventory).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stack.resume(Svc::Inventory).unwrap();
    for call in join_all(calls).await {
        call.unwrap().unwrap();
    }

    let checkouts = all_terminal(&mut clients).await;
    assert_eq!(checkouts.len(), 8);
    for c in &checkouts {
        assert_eq!(c.status(), pb::CheckoutStatus::Cancelled, "{c:?}");
        assert_eq!(c.failure_reason, "dependency_unavailable");
    }
    let hung = checkouts.iter().find(|c| {
        c.customer_id == "e2e"
            && c.steps
                .iter()
                .any(|s| s.name == "reserve_stock" && s.compensation_attempts > 1)
    });
    assert!(
        hung.is_some(),
        "a release was retried while inventory hung: {checkouts:#?}"
    );
    assert_invariants(&mut clients, &checkouts, &[("MUG", 50)]).await;
}

#[tokio::test]
async fn two_hundred_concurrent_checkouts_for_scarce_stock() {
    let (_stack, mut clients) = stack_with(&[("SCARCE", 500, 40), ("PLENTY", 100, 10_000)]).await;
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let clients = clients.clone();
            let items: &[(&str, i32)] = if i % 3 == 0 {
                &[("SCARCE", 2), ("PLENTY", 1)]
            } else {
                &[("SCARCE", 1)]
            };
            let token = if i % 10 == 0 {
                "tok_chargeDeclined"
            } else {
                "tok_visa"
            };
            let message = place(&format!("rush-{i}"), token, "FR", items);
            tokio::spawn(async move { place_until_accepted(&clients, message, None).await })
        })
        .collect();
    for call in join_all(calls).await {
        call.unwrap();
    }
    let checkouts = all_terminal(&mut clients).await;
    assert_eq!(checkouts.len(), 200);
    let completed = checkouts
        .iter()
        .filter(|c| c.status() == pb::CheckoutStatus::Completed)
        .count();
    assert!(completed > 0 && completed <= 40, "completed {completed}");
    assert!(checkouts.iter().any(|c| c.failure_reason == "out_of_stock"));
    assert_invariants(
        &mut clients,
        &checkouts,
        &[("SCARCE", 40), ("PLENTY", 10_000)],
    )
    .await;
}

#[tokio::test]
async fn bad_input_through_the_public_api_gets_the_right_codes_and_changes_nothing() {
    let (_stack, mut clients) = stack_with(&[("MUG", 700, 10)]).await;
    let mut bad = place("bad", "", "FRA", &[("MUG", 0)]);
    bad.customer_id = "x".repeat(65);
    let status = clients.checkout.place_order(bad).await.unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "customer_id",
            "items[0].quantity",
            "payment_token",
            "shipping_address.country"
        ]
    );
    let status = clients
        .checkout
        .place_order(place("unknown", "tok_visa", "FR", &[("NOPE", 1)]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let too_many: Vec<(String, i32)> = (0..101).map(|i| (format!("S{i}"), 1)).collect();
    let refs: Vec<(&str, i32)> = too_many.iter().map(|(s, q)| (s.as_str(), *q)).collect();
    let status = clients
        .checkout
        .place_order(place("big", "tok_visa", "FR", &refs))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["items"]);

    let first = clients
        .checkout
        .place_order(place("k", "tok_visa", "FR", &[("MUG", 1)]))
        .await
        .unwrap();
    let reuse = clients
        .checkout
        .place_order(place("k", "tok_visa", "FR", &[("MUG", 2)]))
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Code::AlreadyExists);
    let status = clients
        .checkout
        .get_checkout(pb::GetCheckoutRequest {
            checkout_id: "not-a-uuid".into(),
            order_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["checkout_id"]);
    let status = clients
        .checkout
        .list_checkouts(pb::ListCheckoutsRequest {
            mode: pb::CoordinationMode::Unspecified.into(),
            page_size: 1000,
            page_token: String::new(),
            status: 99,
            customer_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["page_size", "status"]);

    let checkouts = all_terminal(&mut clients).await;
    assert_eq!(
        checkouts.len(),
        1,
        "only the valid order started a checkout"
    );
    assert_eq!(
        checkouts[0].checkout_id,
        first.into_inner().checkout.unwrap().checkout_id
    );
    assert_invariants(&mut clients, &checkouts, &[("MUG", 10)]).await;
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let (mut stack, _clients) = stack_with(&[]).await;
    for svc in Svc::ALL {
        assert_eq!(stack.terminate(svc).unwrap(), Some(0), "{}", svc.binary());
    }
}
