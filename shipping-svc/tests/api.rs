//! shipping-svc through its gRPC API, against a real Postgres database per test.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use platform::testing::{self, Options, TestServer, bad_fields, reason};
use shop_proto::common::v1 as common;
use shop_proto::shipping::v1::{self as pb, shipping_service_client::ShippingServiceClient};
use tonic::{Code, transport::Channel};

type Client = ShippingServiceClient<Channel>;

async fn spawn(options: Options) -> (TestServer, Client) {
    let server = testing::spawn(shipping_svc::NAME, options, shipping_svc::build).await;
    let client = ShippingServiceClient::new(server.channel.clone());
    (server, client)
}

fn order_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn address(country: &str) -> Option<common::Address> {
    Some(common::Address {
        name: "Ada Lovelace".into(),
        line1: "1 Rue de la Paix".into(),
        line2: String::new(),
        city: "Paris".into(),
        postal_code: "75002".into(),
        country: country.into(),
    })
}

fn create(key: &str, order_id: &str, country: &str) -> pb::CreateShipmentRequest {
    pb::CreateShipmentRequest {
        idempotency_key: key.into(),
        order_id: order_id.into(),
        address: address(country),
    }
}

fn cancel_by_key(key: &str, create_key: &str) -> pb::CancelShipmentRequest {
    pb::CancelShipmentRequest {
        idempotency_key: key.into(),
        shipment_id: String::new(),
        create_idempotency_key: create_key.into(),
    }
}

async fn shipment(client: &mut Client, order_id: &str) -> Result<pb::Shipment, tonic::Status> {
    client
        .get_shipment(pb::GetShipmentRequest {
            order_id: order_id.into(),
        })
        .await
        .map(|r| r.into_inner().shipment.unwrap_or_default())
}

#[tokio::test]
async fn create_gives_a_tracking_number_and_cancel_cancels() {
    let (_server, mut client) = spawn(Options::default()).await;
    let order = order_id();
    let created = client
        .create_shipment(create("c", &order, "FR"))
        .await
        .unwrap()
        .into_inner()
        .shipment
        .unwrap();
    assert_eq!(created.status(), pb::ShipmentStatus::Created);
    assert!(created.tracking_number.starts_with("SHP"));
    assert_eq!(shipment(&mut client, &order).await.unwrap(), created);

    let cancelled = client
        .cancel_shipment(pb::CancelShipmentRequest {
            idempotency_key: "x".into(),
            shipment_id: created.shipment_id.clone(),
            create_idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .shipment
        .unwrap();
    assert_eq!(cancelled.status(), pb::ShipmentStatus::Cancelled);
    assert_eq!(
        shipment(&mut client, &order).await.unwrap().status(),
        pb::ShipmentStatus::Cancelled
    );
}

#[tokio::test]
async fn antarctica_is_undeliverable_and_nothing_is_created() {
    let (_server, mut client) = spawn(Options::default()).await;
    let order = order_id();
    let status = client
        .create_shipment(create("c", &order, "AQ"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "UNDELIVERABLE_ADDRESS");
    assert_eq!(
        shipment(&mut client, &order).await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn replay_creates_once_and_reuse_is_rejected() {
    let (_server, mut client) = spawn(Options::default()).await;
    let order = order_id();
    let first = client
        .create_shipment(create("k", &order, "FR"))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .create_shipment(create("k", &order, "FR"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again, "same tracking number");
    let status = client
        .create_shipment(create("k", &order, "DE"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let status = client
        .create_shipment(create("k2", &order, "FR"))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "ORDER_ALREADY_SHIPPED");
}

#[tokio::test]
async fn cancel_before_create_wins_over_the_late_create() {
    let (_server, mut client) = spawn(Options::default()).await;
    let order = order_id();
    let early = client
        .cancel_shipment(cancel_by_key("saga/cancel", "saga/ship"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(early.shipment, None);
    let late = client
        .create_shipment(create("saga/ship", &order, "FR"))
        .await
        .unwrap_err();
    assert_eq!(reason(&late), "CANCELLED_BEFORE_CREATED");
    assert_eq!(
        shipment(&mut client, &order).await.unwrap_err().code(),
        Code::NotFound
    );

    // After a real create, cancel by the create key finds and cancels it, once.
    let order = order_id();
    client
        .create_shipment(create("saga2/ship", &order, "FR"))
        .await
        .unwrap();
    for _ in 0..2 {
        let cancelled = client
            .cancel_shipment(cancel_by_key("saga2/cancel", "saga2/ship"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            cancelled.shipment.unwrap().status(),
            pb::ShipmentStatus::Cancelled
        );
    }
}

#[tokio::test]
async fn bad_input_names_every_field_and_changes_nothing() {
    let (_server, mut client) = spawn(Options::default()).await;
    let order = order_id();
    let status = client
        .create_shipment(pb::CreateShipmentRequest {
            idempotency_key: "k".into(),
            order_id: order.clone(),
            address: Some(common::Address {
                name: String::new(),
                line1: "x".repeat(201),
                line2: String::new(),
                city: "Paris".into(),
                postal_code: String::new(),
                country: "France".into(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "address.name",
            "address.line1",
            "address.postal_code",
            "address.country"
        ]
    );
    let status = client
        .create_shipment(pb::CreateShipmentRequest {
            idempotency_key: String::new(),
            order_id: String::new(),
            address: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["idempotency_key", "order_id", "address"]
    );
    let status = client
        .cancel_shipment(pb::CancelShipmentRequest {
            idempotency_key: "k".into(),
            shipment_id: "abc".into(),
            create_idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["shipment_id"]);
    assert_eq!(
        shipment(&mut client, &order).await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn injected_errors_malformed_specs_and_faults_off() {
    let fault = "svc=shipping-svc,method=CreateShipment,code=resource_exhausted";
    let (_on, mut client) = spawn(Options {
        fault_injection: true,
        ..Options::default()
    })
    .await;
    let order = order_id();
    let status = client
        .create_shipment(testing::with_fault(create("f", &order, "FR"), fault, "f"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let bad = client
        .create_shipment(testing::with_fault(
            create("g", &order, "FR"),
            "svc=shipping-svc",
            "g",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad.code(),
        Code::InvalidArgument,
        "a malformed spec is refused"
    );
    client
        .create_shipment(testing::with_fault(create("f", &order, "FR"), fault, "f"))
        .await
        .unwrap();

    let (_off, mut client) = spawn(Options::default()).await;
    client
        .create_shipment(testing::with_fault(
            create("f", &order_id(), "FR"),
            fault,
            "f",
        ))
        .await
        .unwrap();
}
