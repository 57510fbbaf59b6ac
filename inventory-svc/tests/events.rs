//! inventory-svc in the choreographed checkout: events published to a throwaway
//! nats-server, the follow-ups read back from the stream, and the stock checked through
//! the gRPC API, against a real Postgres database per test.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use futures::future::join_all;
use platform::events::{Event, STREAM};
use platform::testing::{WithBroker, events_of, publish, publish_again, wait_settled};
use shop_proto::common::v1 as common;
use shop_proto::events::v1::{self as ev, envelope::Payload};
use shop_proto::inventory::v1::{self as pb, inventory_service_client::InventoryServiceClient};
use tonic::{Code, transport::Channel};
use uuid::Uuid;

/// How long a follow-up may take on a busy two-core machine; waits end as soon as it
/// arrives.
const WAIT: Duration = Duration::from_secs(30);
/// What inventory-svc publishes.
const EMITTED: &str = "shop.events.inventory.>";

/// inventory-svc running with a broker of its own.
struct Shop {
    client: InventoryServiceClient<Channel>,
    events: WithBroker,
}

async fn start() -> Shop {
    let events = WithBroker::spawn(inventory_svc::NAME, inventory_svc::build).await;
    Shop {
        client: InventoryServiceClient::new(events.channel()),
        events,
    }
}

impl Shop {
    async fn product(&mut self, sku: &str, stock: i64) {
        self.client
            .upsert_product(pb::UpsertProductRequest {
                sku: sku.into(),
                name: format!("Product {sku}"),
                unit_price: eur(250),
            })
            .await
            .unwrap();
        self.client
            .set_stock(pb::SetStockRequest {
                sku: sku.into(),
                quantity: stock,
            })
            .await
            .unwrap();
    }

    /// `(available, reserved)` of `sku`.
    async fn stock(&mut self, sku: &str) -> (i64, i64) {
        let s = self
            .client
            .get_stock(pb::GetStockRequest { sku: sku.into() })
            .await
            .unwrap()
            .into_inner();
        (s.available, s.reserved)
    }

    async fn reservation(&mut self, order_id: &str) -> Result<pb::Reservation, tonic::Status> {
        self.client
            .get_reservation(pb::GetReservationRequest {
                order_id: order_id.into(),
            })
            .await
            .map(|r| r.into_inner().reservation.unwrap_or_default())
    }

    /// The one follow-up inventory-svc emitted for `cause`'s checkout.
    async fn follow_up(&self, cause: &Event) -> Event {
        let [event] = events_of(&self.events.js, EMITTED, &cause.correlation_id, 1, WAIT)
            .await
            .try_into()
            .unwrap();
        assert_eq!(event.envelope.causation_id, cause.id.to_string());
        assert_eq!(event.producer, "inventory");
        event
    }
}

fn eur(amount_minor: i64) -> Option<common::Money> {
    Some(common::Money {
        amount_minor,
        currency: "EUR".into(),
    })
}

/// A checkout of `lines` at 2.50 EUR a unit, as payment-svc passes it on.
fn checkout(lines: &[(&str, i32)]) -> ev::Checkout {
    ev::Checkout {
        checkout_id: Uuid::now_v7().to_string(),
        order_id: Uuid::now_v7().to_string(),
        customer_id: "cust-1".into(),
        lines: lines
            .iter()
            .map(|&(sku, quantity)| ev::Line {
                sku: sku.into(),
                quantity,
                unit_price: eur(250),
                line_total: eur(250 * i64::from(quantity)),
            })
            .collect(),
        total: eur(lines.iter().map(|&(_, q)| 250 * i64::from(q)).sum()),
        payment_token: "tok_visa".into(),
        shipping_address: Some(common::Address {
            name: "Ada Lovelace".into(),
            line1: "1 Rue de la Paix".into(),
            line2: String::new(),
            city: "Paris".into(),
            postal_code: "75002".into(),
            country: "FR".into(),
        }),
    }
}

fn captured(checkout: ev::Checkout) -> Event {
    let checkout_id = checkout.checkout_id.clone();
    Event::new(
        "payment",
        &checkout_id,
        None,
        Payload::PaymentCaptured(ev::PaymentCaptured {
            checkout: Some(checkout),
            payment_id: Uuid::now_v7().to_string(),
        }),
    )
}

fn reserved(event: &Event) -> &ev::StockReserved {
    match &event.payload {
        Payload::StockReserved(reserved) => reserved,
        _ => panic!("StockReserved expected, got {}", event.kind()),
    }
}

/// How many messages on `filter` the stream holds.
async fn stored(js: &jetstream::Context, filter: &str) -> u64 {
    let stream = js.get_stream(STREAM).await.unwrap();
    let consumer: PullConsumer = stream
        .create_consumer(pull::Config {
            filter_subject: filter.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    consumer.cached_info().num_pending
}

#[tokio::test]
async fn a_captured_payment_reserves_every_line() {
    let mut shop = start().await;
    shop.product("MUG", 10).await;
    shop.product("TEE", 4).await;
    let checkout = checkout(&[("TEE", 4), ("MUG", 3)]);
    let cause = captured(checkout.clone());
    publish(&shop.events.js, &cause).await;

    let event = shop.follow_up(&cause).await;
    let reserved = reserved(&event);
    assert_eq!(
        reserved.checkout.as_ref(),
        Some(&checkout),
        "carried forward"
    );
    assert_eq!(shop.stock("MUG").await, (7, 3));
    assert_eq!(shop.stock("TEE").await, (0, 4));
    let reservation = shop.reservation(&checkout.order_id).await.unwrap();
    assert_eq!(reservation.reservation_id, reserved.reservation_id);
    assert_eq!(reservation.status(), pb::ReservationStatus::Reserved);
}

#[tokio::test]
async fn a_line_larger_than_the_stock_is_rejected_and_nothing_is_held() {
    let mut shop = start().await;
    shop.product("MUG", 10).await;
    shop.product("TEE", 2).await;
    // MUG comes first in lock order and could be covered: it must not be held either.
    let checkout = checkout(&[("MUG", 3), ("TEE", 3)]);
    let cause = captured(checkout.clone());
    publish(&shop.events.js, &cause).await;

    let event = shop.follow_up(&cause).await;
    let Payload::StockRejected(rejected) = &event.payload else {
        panic!("StockRejected expected, got {}", event.kind());
    };
    assert_eq!(rejected.failure_reason, "out_of_stock");
    assert_eq!(rejected.checkout.as_ref(), Some(&checkout));
    assert_eq!(shop.stock("MUG").await, (10, 0));
    assert_eq!(shop.stock("TEE").await, (2, 0));
    let status = shop.reservation(&checkout.order_id).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn a_rejected_shipment_releases_the_reservation() {
    let mut shop = start().await;
    shop.product("MUG", 10).await;
    let checkout = checkout(&[("MUG", 3)]);
    let cause = captured(checkout.clone());
    publish(&shop.events.js, &cause).await;
    let stock_reserved = shop.follow_up(&cause).await;
    assert_eq!(shop.stock("MUG").await, (7, 3));

    let rejected = Event::new(
        "shipping",
        &checkout.checkout_id,
        Some(&stock_reserved),
        Payload::ShipmentRejected(ev::ShipmentRejected {
            checkout: Some(checkout.clone()),
            failure_reason: "undeliverable_address".into(),
        }),
    );
    publish(&shop.events.js, &rejected).await;

    let emitted = events_of(&shop.events.js, EMITTED, &checkout.checkout_id, 2, WAIT).await;
    let Payload::StockReleased(released) = &emitted[1].payload else {
        panic!("StockReleased expected, got {}", emitted[1].kind());
    };
    assert_eq!(released.failure_reason, "undeliverable_address");
    assert_eq!(released.checkout.as_ref(), Some(&checkout));
    assert_eq!(emitted[1].envelope.causation_id, rejected.id.to_string());
    assert_eq!(shop.stock("MUG").await, (10, 0));
    let reservation = shop.reservation(&checkout.order_id).await.unwrap();
    assert_eq!(reservation.status(), pb::ReservationStatus::Released);
}

#[tokio::test]
async fn the_same_event_delivered_twice_reserves_once() {
    let mut shop = start().await;
    shop.product("MUG", 10).await;
    let checkout = checkout(&[("MUG", 3)]);
    let cause = captured(checkout.clone());
    publish(&shop.events.js, &cause).await;
    let first = shop.follow_up(&cause).await;

    let again = publish_again(&shop.events.js, &cause).await;
    wait_settled(
        &shop.events.js,
        inventory_svc::NAME,
        &cause.subject(),
        again,
    )
    .await;

    assert_eq!(shop.stock("MUG").await, (7, 3));
    assert_eq!(
        stored(&shop.events.js, EMITTED).await,
        1,
        "one StockReserved"
    );
    let reservation = shop.reservation(&checkout.order_id).await.unwrap();
    assert_eq!(reservation.reservation_id, reserved(&first).reservation_id);
    // Not parked as a second reservation of the order either: simply recognised.
    let parked = shop.events.dead_letters(0, WAIT).await;
    assert!(parked.is_empty(), "{parked:?}");
}

#[tokio::test]
async fn concurrent_checkouts_never_reserve_more_than_the_stock() {
    let mut shop = start().await;
    shop.product("MUG", 10).await;
    let causes: Vec<Event> = (0..20).map(|_| captured(checkout(&[("MUG", 3)]))).collect();
    join_all(causes.iter().map(|cause| publish(&shop.events.js, cause))).await;

    let outcomes = join_all(causes.iter().map(|cause| shop.follow_up(cause))).await;
    let won: Vec<&Event> = outcomes
        .iter()
        .filter(|e| matches!(e.payload, Payload::StockReserved(_)))
        .collect();
    let lost = outcomes
        .iter()
        .filter(|e| matches!(&e.payload, Payload::StockRejected(r) if r.failure_reason == "out_of_stock"))
        .count();
    // 3 units each out of 10: three checkouts fit (9 units), one unit is left over.
    assert_eq!((won.len(), lost), (3, 17), "every checkout gets an answer");
    let units: i32 = won
        .iter()
        .flat_map(|e| &reserved(e).checkout.as_ref().unwrap().lines)
        .map(|l| l.quantity)
        .sum();
    assert_eq!(units, 9);
    assert_eq!(shop.stock("MUG").await, (1, 9));
    let parked = shop.events.dead_letters(0, WAIT).await;
    assert!(parked.is_empty(), "{parked:?}");
}

#[tokio::test]
async fn an_event_that_makes_no_sense_is_parked_for_a_person() {
    let mut shop = start().await;
    shop.product("MUG", 10).await;
    let no_checkout = Event::new(
        "payment",
        &Uuid::now_v7().to_string(),
        None,
        Payload::PaymentCaptured(ev::PaymentCaptured {
            checkout: None,
            payment_id: Uuid::now_v7().to_string(),
        }),
    );
    let mut bad = checkout(&[("MUG", 0)]);
    bad.order_id = "not-a-uuid".into();
    let bad_fields = captured(bad);
    publish(&shop.events.js, &no_checkout).await;
    publish(&shop.events.js, &bad_fields).await;

    let parked = shop.events.dead_letters(2, WAIT).await;
    let reason_of = |event: &Event| {
        let letter = parked
            .iter()
            .find(|d| d.event_id == event.id.to_string())
            .unwrap_or_else(|| panic!("{} not parked: {parked:?}", event.id));
        assert_eq!(letter.consumer, "inventory-svc");
        assert_eq!(letter.subject, "shop.events.payment.PaymentCaptured");
        assert_eq!(letter.deliveries, 1, "never retried");
        assert_eq!(letter.payload, event.encode());
        letter.reason.clone()
    };
    assert!(reason_of(&no_checkout).contains("checkout is missing"));
    let reason = reason_of(&bad_fields);
    assert!(
        reason.contains("checkout.order_id") && reason.contains("checkout.lines[0].quantity"),
        "{reason}"
    );
    assert_eq!(stored(&shop.events.js, EMITTED).await, 0, "nothing emitted");
    assert_eq!(shop.stock("MUG").await, (10, 0));
}
