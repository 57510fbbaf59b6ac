//! order-svc's part in the choreographed checkout: events go in on the broker, and what a
//! user checks comes out (the events it emits, the order through the gRPC API, parked
//! messages through EventAdminService). A real Postgres database and a NATS server per
//! test.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use platform::events::Event;
use platform::testing::{WithBroker, events_of, publish, publish_again, wait_settled};
use shop_proto::common::v1 as common;
use shop_proto::events::v1::{self as ev, envelope::Payload};
use shop_proto::order::v1::{self as pb, order_service_client::OrderServiceClient};
use tonic::transport::Channel;

/// Longest a test waits for the service to react.
const WAIT: Duration = Duration::from_secs(20);
/// What order-svc emits.
const ORDER_EVENTS: &str = "shop.events.order.>";

/// order-svc with its events on a broker of its own.
struct Shop {
    orders: OrderServiceClient<Channel>,
    events: WithBroker,
}

async fn start() -> Shop {
    let events = WithBroker::spawn(order_svc::NAME, order_svc::build).await;
    Shop {
        orders: OrderServiceClient::new(events.channel()),
        events,
    }
}

impl Shop {
    /// What order-svc emitted for checkout `correlation_id`, once `count` events arrived.
    async fn emitted(&self, correlation_id: &str, count: usize) -> Vec<Event> {
        events_of(&self.events.js, ORDER_EVENTS, correlation_id, count, WAIT).await
    }
}

fn eur(amount_minor: i64) -> Option<common::Money> {
    Some(common::Money {
        amount_minor,
        currency: "EUR".into(),
    })
}

fn line(sku: &str, quantity: i32, unit: i64) -> ev::Line {
    ev::Line {
        sku: sku.into(),
        quantity,
        unit_price: eur(unit),
        line_total: eur(unit * i64::from(quantity)),
    }
}

/// A checkout of 2 × 7.00 + 1 × 15.00 = 29.00 EUR, as the front door requests it.
fn checkout(customer: &str) -> ev::Checkout {
    ev::Checkout {
        checkout_id: uuid::Uuid::now_v7().to_string(),
        order_id: String::new(),
        customer_id: customer.into(),
        lines: vec![line("MUG", 2, 700), line("TEE", 1, 1500)],
        total: eur(2900),
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

fn requested(checkout: &ev::Checkout) -> Event {
    let payload = Payload::CheckoutRequested(ev::CheckoutRequested {
        checkout: Some(checkout.clone()),
    });
    Event::new("checkout", &checkout.checkout_id, None, payload)
}

/// An event of another service about the checkout.
fn from(producer: &str, checkout: &ev::Checkout, payload: Payload) -> Event {
    Event::new(producer, &checkout.checkout_id, None, payload)
}

/// Requests the checkout and returns it as OrderPlaced carries it on.
async fn place(shop: &Shop, checkout: &ev::Checkout) -> ev::Checkout {
    place_with(shop, &requested(checkout)).await
}

async fn order(shop: &Shop, order_id: &str) -> pb::Order {
    shop.orders
        .clone()
        .get_order(pb::GetOrderRequest {
            order_id: order_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
}

async fn orders_of(shop: &Shop, customer: &str) -> Vec<pb::Order> {
    shop.orders
        .clone()
        .list_orders(pb::ListOrdersRequest {
            customer_id: customer.into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .orders
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

#[tokio::test]
async fn a_requested_checkout_places_a_pending_order() {
    let shop = start().await;
    let requested_checkout = checkout("ada");
    let request = requested(&requested_checkout);
    publish(&shop.events.js, &request).await;

    let emitted = shop.emitted(&request.correlation_id, 1).await;
    let placed = &emitted[0];
    assert_eq!(placed.producer, "order");
    assert_eq!(placed.envelope.causation_id, request.id.to_string());
    let Payload::OrderPlaced(ev::OrderPlaced {
        checkout: Some(carried),
    }) = &placed.payload
    else {
        panic!("OrderPlaced expected, got {placed:?}");
    };
    assert_eq!(
        *carried,
        ev::Checkout {
            order_id: carried.order_id.clone(),
            ..requested_checkout
        },
        "the checkout is carried on with its order_id set"
    );

    let order = order(&shop, &carried.order_id).await;
    assert_eq!(order.status(), pb::OrderStatus::Pending);
    assert_eq!(order.total, eur(2900));
    assert_eq!(order.customer_id, "ada");
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.shipping_address.unwrap().city, "Lyon");
}

#[tokio::test]
async fn a_created_shipment_confirms_the_order() {
    let shop = start().await;
    let placed = place(&shop, &checkout("bob")).await;
    let shipped = Payload::ShipmentCreated(ev::ShipmentCreated {
        checkout: Some(placed.clone()),
        tracking_number: "TRK-42".into(),
    });
    publish(&shop.events.js, &from("shipping", &placed, shipped)).await;

    let emitted = shop.emitted(&placed.checkout_id, 2).await;
    assert_eq!(kinds(&emitted), ["OrderPlaced", "OrderConfirmed"]);
    assert_eq!(
        emitted[1].payload,
        Payload::OrderConfirmed(ev::OrderConfirmed {
            checkout: Some(placed.clone()),
            tracking_number: "TRK-42".into(),
        })
    );
    assert_eq!(
        order(&shop, &placed.order_id).await.status(),
        pb::OrderStatus::Confirmed
    );
}

#[tokio::test]
async fn a_declined_or_refunded_payment_cancels_the_order_with_its_reason() {
    let shop = start().await;
    let declined = place(&shop, &checkout("cy")).await;
    let refunded = place(&shop, &checkout("cy")).await;
    let events = [
        (
            &declined,
            "card_declined",
            Payload::PaymentDeclined(ev::PaymentDeclined {
                checkout: Some(declined.clone()),
                payment_id: uuid::Uuid::now_v7().to_string(),
                failure_reason: "card_declined".into(),
            }),
        ),
        (
            &refunded,
            "out_of_stock",
            Payload::PaymentRefunded(ev::PaymentRefunded {
                checkout: Some(refunded.clone()),
                payment_id: uuid::Uuid::now_v7().to_string(),
                failure_reason: "out_of_stock".into(),
            }),
        ),
    ];
    for (placed, reason, payload) in events {
        publish(&shop.events.js, &from("payment", placed, payload)).await;
        let emitted = shop.emitted(&placed.checkout_id, 2).await;
        assert_eq!(
            emitted[1].payload,
            Payload::OrderCancelled(ev::OrderCancelled {
                checkout: Some(placed.clone()),
                failure_reason: reason.into(),
            })
        );
        let order = order(&shop, &placed.order_id).await;
        assert_eq!(order.status(), pb::OrderStatus::Cancelled);
        assert_eq!(order.cancel_reason, reason);
    }
}

#[tokio::test]
async fn a_checkout_delivered_again_places_one_order() {
    let shop = start().await;
    let checkout = checkout("dee");
    let request = requested(&checkout);
    let placed = place_with(&shop, &request).await;

    // The same event stored again under another Nats-Msg-Id, so the stream's duplicate
    // window lets it through: only the consumer's inbox stands between it and an order.
    let again = publish_again(&shop.events.js, &request).await;
    wait_settled(&shop.events.js, order_svc::NAME, &request.subject(), again).await;

    // Anything the repeat emitted would be relayed before what the next event emits.
    let declined = Payload::PaymentDeclined(ev::PaymentDeclined {
        checkout: Some(placed.clone()),
        payment_id: uuid::Uuid::now_v7().to_string(),
        failure_reason: "card_declined".into(),
    });
    publish(&shop.events.js, &from("payment", &placed, declined)).await;
    let emitted = shop.emitted(&checkout.checkout_id, 2).await;
    assert_eq!(kinds(&emitted), ["OrderPlaced", "OrderCancelled"]);
    let orders = orders_of(&shop, "dee").await;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].order_id, placed.order_id);
}

#[tokio::test]
async fn a_second_request_for_a_checkout_is_parked_and_places_no_second_order() {
    let shop = start().await;
    let checkout = checkout("fay");
    let placed = place(&shop, &checkout).await;

    // A new event (a new id, past the inbox), at a price of one cent a line: a forgery or
    // a bug, either way not a second order.
    let cheap = ev::Checkout {
        lines: vec![line("MUG", 2, 1), line("TEE", 1, 1)],
        total: eur(3),
        ..checkout.clone()
    };
    let second = requested(&cheap);
    publish(&shop.events.js, &second).await;
    let parked = shop.events.dead_letters(1, WAIT).await;
    let letter = parked
        .iter()
        .find(|l| l.event_id == second.id.to_string())
        .unwrap_or_else(|| panic!("the second request not parked: {parked:?}"));
    assert!(
        letter.reason.contains(&checkout.checkout_id)
            && letter.reason.contains("already has an order"),
        "{letter:?}"
    );
    let orders = orders_of(&shop, "fay").await;
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0].order_id, placed.order_id);
    assert_eq!(orders[0].checkout_id, checkout.checkout_id);
    assert_eq!(orders[0].total.as_ref().map(|t| t.amount_minor), Some(2900));
}

/// Publishes `request` and returns the checkout its OrderPlaced carries.
async fn place_with(shop: &Shop, request: &Event) -> ev::Checkout {
    publish(&shop.events.js, request).await;
    let emitted = shop.emitted(&request.correlation_id, 1).await;
    match &emitted[0].payload {
        Payload::OrderPlaced(ev::OrderPlaced {
            checkout: Some(placed),
        }) => placed.clone(),
        other => panic!("OrderPlaced expected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_checkout_that_makes_no_sense_is_parked_and_places_nothing() {
    let shop = start().await;
    let no_lines = requested(&ev::Checkout {
        lines: Vec::new(),
        ..checkout("eve")
    });
    let no_checkout = Event::new(
        "checkout",
        "c-without-checkout",
        None,
        Payload::CheckoutRequested(ev::CheckoutRequested { checkout: None }),
    );
    publish(&shop.events.js, &no_lines).await;
    publish(&shop.events.js, &no_checkout).await;

    let parked = shop.events.dead_letters(2, WAIT).await;
    let reason_of = |event: &Event| {
        let letter = parked
            .iter()
            .find(|l| l.event_id == event.id.to_string())
            .unwrap_or_else(|| panic!("{} not parked: {parked:?}", event.id));
        assert_eq!(letter.consumer, "order-svc");
        assert_eq!(letter.subject, "shop.events.checkout.CheckoutRequested");
        assert_eq!(letter.deliveries, 1, "poison is parked at once");
        letter.reason.clone()
    };
    assert!(
        reason_of(&no_lines).contains("checkout.lines must not be empty"),
        "{parked:?}"
    );
    assert!(
        reason_of(&no_checkout).contains("CheckoutRequested.checkout is required"),
        "{parked:?}"
    );
    assert!(orders_of(&shop, "eve").await.is_empty());
}
