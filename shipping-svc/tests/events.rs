//! shipping-svc in the choreographed checkout: StockReserved published to a throwaway
//! nats-server, the follow-up read back from the stream, and the shipment checked
//! through the gRPC API, against a real Postgres database per test.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use platform::events::{Event, STREAM};
use platform::testing::{WithBroker, events_of, publish, publish_again, wait_settled};
use shop_proto::common::v1 as common;
use shop_proto::events::v1::{self as ev, envelope::Payload};
use shop_proto::shipping::v1::{self as pb, shipping_service_client::ShippingServiceClient};
use tonic::{Code, transport::Channel};
use uuid::Uuid;

/// How long a follow-up may take on a busy two-core machine; waits end as soon as it
/// arrives.
const WAIT: Duration = Duration::from_secs(30);
/// What shipping-svc publishes.
const EMITTED: &str = "shop.events.shipping.>";

/// shipping-svc running with a broker of its own.
struct Shop {
    client: ShippingServiceClient<Channel>,
    events: WithBroker,
}

async fn start() -> Shop {
    let events = WithBroker::spawn(shipping_svc::NAME, shipping_svc::build).await;
    Shop {
        client: ShippingServiceClient::new(events.channel()),
        events,
    }
}

impl Shop {
    async fn shipment(&mut self, order_id: &str) -> Result<pb::Shipment, tonic::Status> {
        self.client
            .get_shipment(pb::GetShipmentRequest {
                order_id: order_id.into(),
            })
            .await
            .map(|r| r.into_inner().shipment.unwrap_or_default())
    }

    /// The one follow-up shipping-svc emitted for `cause`'s checkout.
    async fn follow_up(&self, cause: &Event) -> Event {
        let [event] = events_of(&self.events.js, EMITTED, &cause.correlation_id, 1, WAIT)
            .await
            .try_into()
            .unwrap();
        assert_eq!(event.envelope.causation_id, cause.id.to_string());
        assert_eq!(event.producer, "shipping");
        event
    }
}

fn address(country: &str) -> common::Address {
    common::Address {
        name: "Ada Lovelace".into(),
        line1: "1 Rue de la Paix".into(),
        line2: String::new(),
        city: "Paris".into(),
        postal_code: "75002".into(),
        country: country.into(),
    }
}

/// A checkout to `country` whose stock inventory-svc has just reserved.
fn stock_reserved(country: &str) -> (ev::Checkout, Event) {
    let checkout = ev::Checkout {
        checkout_id: Uuid::now_v7().to_string(),
        order_id: Uuid::now_v7().to_string(),
        customer_id: "cust-1".into(),
        lines: vec![ev::Line {
            sku: "MUG".into(),
            quantity: 1,
            unit_price: None,
            line_total: None,
        }],
        total: None,
        payment_token: "tok_visa".into(),
        shipping_address: Some(address(country)),
    };
    let event = Event::new(
        "inventory",
        &checkout.checkout_id,
        None,
        Payload::StockReserved(ev::StockReserved {
            checkout: Some(checkout.clone()),
            reservation_id: Uuid::now_v7().to_string(),
        }),
    );
    (checkout, event)
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
async fn reserved_stock_to_a_served_country_is_shipped() {
    let mut shop = start().await;
    let (checkout, cause) = stock_reserved("FR");
    publish(&shop.events.js, &cause).await;

    let event = shop.follow_up(&cause).await;
    let Payload::ShipmentCreated(created) = &event.payload else {
        panic!("ShipmentCreated expected, got {}", event.kind());
    };
    assert_eq!(
        created.checkout.as_ref(),
        Some(&checkout),
        "carried forward"
    );
    let shipment = shop.shipment(&checkout.order_id).await.unwrap();
    assert_eq!(shipment.status(), pb::ShipmentStatus::Created);
    assert_eq!(shipment.tracking_number, created.tracking_number);
    assert_eq!(shipment.address, Some(address("FR")));
}

#[tokio::test]
async fn an_unserved_country_is_rejected_and_nothing_is_created() {
    let mut shop = start().await;
    let (checkout, cause) = stock_reserved("AQ");
    publish(&shop.events.js, &cause).await;

    let event = shop.follow_up(&cause).await;
    let Payload::ShipmentRejected(rejected) = &event.payload else {
        panic!("ShipmentRejected expected, got {}", event.kind());
    };
    assert_eq!(rejected.failure_reason, "undeliverable_address");
    assert_eq!(rejected.checkout.as_ref(), Some(&checkout));
    let status = shop.shipment(&checkout.order_id).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn the_same_event_delivered_twice_ships_once() {
    let mut shop = start().await;
    let (checkout, cause) = stock_reserved("FR");
    publish(&shop.events.js, &cause).await;
    let first = shop.follow_up(&cause).await;
    let Payload::ShipmentCreated(created) = &first.payload else {
        panic!("ShipmentCreated expected, got {}", first.kind());
    };

    let again = publish_again(&shop.events.js, &cause).await;
    wait_settled(&shop.events.js, shipping_svc::NAME, &cause.subject(), again).await;

    assert_eq!(
        stored(&shop.events.js, EMITTED).await,
        1,
        "one ShipmentCreated"
    );
    let shipment = shop.shipment(&checkout.order_id).await.unwrap();
    assert_eq!(shipment.tracking_number, created.tracking_number);
    // Not parked as a second shipment of the order either: simply recognised.
    let parked = shop.events.dead_letters(0, WAIT).await;
    assert!(parked.is_empty(), "{parked:?}");
}

#[tokio::test]
async fn an_event_without_a_usable_address_is_parked_for_a_person() {
    let mut shop = start().await;
    let (mut checkout, _) = stock_reserved("FR");
    checkout.shipping_address = Some(common::Address {
        country: "France".into(),
        ..address("FR")
    });
    let bad = Event::new(
        "inventory",
        &checkout.checkout_id,
        None,
        Payload::StockReserved(ev::StockReserved {
            checkout: Some(checkout.clone()),
            reservation_id: Uuid::now_v7().to_string(),
        }),
    );
    publish(&shop.events.js, &bad).await;

    let parked = shop.events.dead_letters(1, WAIT).await;
    assert_eq!(parked[0].event_id, bad.id.to_string());
    assert_eq!(parked[0].consumer, "shipping-svc");
    assert_eq!(parked[0].deliveries, 1, "never retried");
    assert!(
        parked[0]
            .reason
            .contains("checkout.shipping_address.country"),
        "{}",
        parked[0].reason
    );
    assert_eq!(stored(&shop.events.js, EMITTED).await, 0, "nothing emitted");
    let status = shop.shipment(&checkout.order_id).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}
