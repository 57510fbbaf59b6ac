//! Consumers trust no more than they must (docs/SECURITY.md), tried from outside against
//! a stack's real broker and services: an event a principal may publish, but that
//! contradicts what a service recorded, is parked with a reason and changes nothing. A
//! second `CheckoutRequested` for a checkout (from the front door's own certificate) makes
//! no second order: order-svc's database holds one order per checkout. An `OrderConfirmed`
//! for a checkout that failed (from order-svc's own certificate), or one naming another
//! order, does not move the tracker's record of the checkout.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use async_nats::{HeaderMap, jetstream};
use e2e::{
    Stack, Svc,
    clients::Clients,
    scenario::{get_checkout, place_in, place_until_accepted, stack_with},
};
use platform::{
    events::{Event, broker},
    security::Principal,
};
use shop_proto::{
    checkout::v1::{self as pb, CoordinationMode},
    common::v1 as common,
    events::v1::{
        self as ev, DeadLetter, ListDeadLettersRequest, envelope::Payload,
        event_admin_service_client::EventAdminServiceClient,
    },
    order::v1 as order,
    payment::v1 as payment,
};
use uuid::Uuid;

/// Publishes `event` on its subject with `principal`'s certificate, as its relay would;
/// the broker's ack says the stream took it (the principal may publish it).
async fn publish_as(stack: &Stack, principal: Principal, event: &Event) {
    let security = stack.pki().unwrap().security(principal).unwrap();
    let (client, _refusals) = broker::connection(
        &stack.nats_url(),
        principal.name(),
        security.tls().as_deref(),
    )
    .await
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.id.to_string().as_str());
    jetstream::new(client)
        .publish_with_headers(event.subject(), headers, event.encode().into())
        .await
        .unwrap()
        .await
        .unwrap_or_else(|e| panic!("{principal} may publish {}: {e}", event.subject()));
}

/// The dead letter `svc` parked `event` as, once it has (up to 20 s).
async fn parked(stack: &Stack, svc: Svc, event: &Event) -> DeadLetter {
    let mut admin = EventAdminServiceClient::new(stack.channel(svc));
    for _ in 0..200 {
        let letters = admin
            .list_dead_letters(ListDeadLettersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .dead_letters;
        if let Some(letter) = letters
            .into_iter()
            .find(|l| l.event_id == event.id.to_string())
        {
            return letter;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{svc:?} never parked {} {}", event.kind(), event.id);
}

/// A choreographed checkout of one MUG (7.00 EUR), run to its end.
async fn checkout(clients: &Clients, key: &str, token: &str) -> pb::Checkout {
    let message = place_in(
        CoordinationMode::Choreographed,
        key,
        token,
        "FR",
        &[("MUG", 1)],
    );
    place_until_accepted(clients, message, None).await
}

/// The checkout as the events carry it, at `unit_minor` a MUG.
fn carried(placed: &pb::Checkout, order_id: &str, unit_minor: i64) -> ev::Checkout {
    let eur = |amount_minor| {
        Some(common::Money {
            amount_minor,
            currency: "EUR".into(),
        })
    };
    ev::Checkout {
        checkout_id: placed.checkout_id.clone(),
        order_id: order_id.into(),
        customer_id: placed.customer_id.clone(),
        lines: vec![ev::Line {
            sku: "MUG".into(),
            quantity: 1,
            unit_price: eur(unit_minor),
            line_total: eur(unit_minor),
        }],
        total: eur(unit_minor),
        payment_token: "tok_visa".into(),
        shipping_address: Some(common::Address {
            name: "Ada".into(),
            line1: "1 Road".into(),
            line2: String::new(),
            city: "Lyon".into(),
            postal_code: "69001".into(),
            country: "FR".into(),
        }),
    }
}

#[tokio::test]
async fn a_second_request_for_a_checkout_makes_no_second_order() {
    let (stack, mut clients) = stack_with(&[("MUG", 700, 10)]).await;
    let first = checkout(&clients, "trust-once", "tok_visa").await;
    assert_eq!(first.status(), pb::CheckoutStatus::Completed, "{first:?}");

    // The same checkout requested again under a new event id (past every inbox), at a
    // cent a MUG: what a replayed or forged request from the front door's certificate is.
    let again = Event::new(
        "checkout",
        &first.checkout_id,
        None,
        Payload::CheckoutRequested(ev::CheckoutRequested {
            checkout: Some(carried(&first, "", 1)),
        }),
    );
    publish_as(&stack, Principal::Orchestrator, &again).await;
    let letter = parked(&stack, Svc::Order, &again).await;
    assert!(letter.reason.contains("already has an order"), "{letter:?}");

    // One order, one payment, and the checkout still points at its first order.
    let orders = clients
        .order
        .list_orders(order::ListOrdersRequest {
            customer_id: first.customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0].order_id, first.order_id);
    assert_eq!(orders[0].checkout_id, first.checkout_id);
    let payments = clients
        .payment
        .list_payments(payment::ListPaymentsRequest {
            order_id: first.order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .payments;
    assert_eq!(payments.len(), 1, "{payments:?}");
    let now = get_checkout(&mut clients, &first.checkout_id).await;
    assert_eq!(now.order_id, first.order_id);
    assert_eq!(now.status(), pb::CheckoutStatus::Completed);
}

#[tokio::test]
async fn events_contradicting_a_checkouts_record_are_parked_by_the_tracker() {
    let (stack, mut clients) = stack_with(&[("MUG", 700, 10)]).await;
    let declined = checkout(&clients, "trust-declined", "tok_chargeDeclined").await;
    assert_eq!(
        declined.status(),
        pb::CheckoutStatus::Cancelled,
        "{declined:?}"
    );

    // order-svc's certificate (a compromised order-svc) confirms the cancelled checkout
    // with a tracking number of its own making, then again naming another order. Only the
    // tracker consumes OrderConfirmed: nothing else can be moved by them.
    let confirm = |order_id: &str| {
        Event::new(
            "order",
            &declined.checkout_id,
            None,
            Payload::OrderConfirmed(ev::OrderConfirmed {
                checkout: Some(carried(&declined, order_id, 700)),
                tracking_number: "FORGED-1".into(),
            }),
        )
    };
    let confirmed = confirm(&declined.order_id);
    let other_order = Uuid::now_v7().to_string();
    let moved = confirm(&other_order);
    for event in [&confirmed, &moved] {
        publish_as(&stack, Principal::OrderSvc, event).await;
    }
    let letter = parked(&stack, Svc::Orchestrator, &confirmed).await;
    assert!(
        letter.reason.contains("its completion contradicts it"),
        "{letter:?}"
    );
    let letter = parked(&stack, Svc::Orchestrator, &moved).await;
    assert!(
        letter.reason.contains(&format!(
            "the checkout's order is {}, the event names order {other_order}",
            declined.order_id
        )),
        "{letter:?}"
    );

    // The checkout reads as it ended: cancelled, its reason, its order, no shipment.
    let now = get_checkout(&mut clients, &declined.checkout_id).await;
    assert_eq!(now.status(), pb::CheckoutStatus::Cancelled, "{now:?}");
    assert_eq!(now.failure_reason, "card_declined");
    assert_eq!(now.order_id, declined.order_id);
    assert_eq!(now.tracking_number, "", "{now:?}");
}
