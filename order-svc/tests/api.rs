//! order-svc through its gRPC API, against a real Postgres database per test.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use platform::testing::{self, Options, TestServer, bad_fields, reason};
use shop_proto::common::v1 as common;
use shop_proto::order::v1::{self as pb, order_service_client::OrderServiceClient};
use tonic::{Code, transport::Channel};

type Client = OrderServiceClient<Channel>;

async fn spawn(options: Options) -> (TestServer, Client) {
    let server = testing::spawn(order_svc::NAME, options, order_svc::build).await;
    let client = OrderServiceClient::new(server.channel.clone());
    (server, client)
}

fn eur(amount_minor: i64) -> Option<common::Money> {
    Some(common::Money {
        amount_minor,
        currency: "EUR".into(),
    })
}

fn line(sku: &str, quantity: i32, unit: i64) -> pb::OrderLine {
    pb::OrderLine {
        sku: sku.into(),
        quantity,
        unit_price: eur(unit),
        line_total: eur(unit * i64::from(quantity)),
    }
}

/// The checkout a test order is for: one per key (its bytes), so a repeat of a key is
/// the same request.
fn checkout_of(key: &str) -> String {
    let mut bytes = [0u8; 16];
    for (byte, k) in bytes.iter_mut().zip(key.bytes()) {
        *byte = k;
    }
    uuid::Uuid::from_bytes(bytes).to_string()
}

fn create(key: &str, customer: &str) -> pb::CreateOrderRequest {
    pb::CreateOrderRequest {
        idempotency_key: key.into(),
        checkout_id: checkout_of(key),
        customer_id: customer.into(),
        lines: vec![line("MUG", 2, 700), line("TEE", 1, 1500)],
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

async fn order(client: &mut Client, order_id: &str) -> pb::Order {
    client
        .get_order(pb::GetOrderRequest {
            order_id: order_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
}

async fn statuses(client: &mut Client, order_id: &str) -> Vec<(pb::OrderStatus, String)> {
    client
        .get_order_history(pb::GetOrderHistoryRequest {
            order_id: order_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .changes
        .into_iter()
        .map(|c| (c.to_status(), c.reason))
        .collect()
}

fn cancel(key: &str, order_id: &str, reason: &str) -> pb::CancelOrderRequest {
    pb::CancelOrderRequest {
        idempotency_key: key.into(),
        order_id: order_id.into(),
        create_idempotency_key: String::new(),
        reason: reason.into(),
    }
}

fn confirm(key: &str, order_id: &str) -> pb::ConfirmOrderRequest {
    pb::ConfirmOrderRequest {
        idempotency_key: key.into(),
        order_id: order_id.into(),
    }
}

#[tokio::test]
async fn create_then_confirm_records_every_transition() {
    let (_server, mut client) = spawn(Options::default()).await;
    let created = client
        .create_order(create("c", "cust-1"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(created.status(), pb::OrderStatus::Pending);
    assert_eq!(created.total, eur(2900));
    assert_eq!(created.lines.len(), 2);
    assert_eq!(order(&mut client, &created.order_id).await, created);

    let confirmed = client
        .confirm_order(confirm("k", &created.order_id))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(confirmed.status(), pb::OrderStatus::Confirmed);
    assert_eq!(
        statuses(&mut client, &created.order_id).await,
        [
            (pb::OrderStatus::Pending, "created".to_owned()),
            (pb::OrderStatus::Confirmed, "confirmed".to_owned())
        ]
    );

    // A confirmed order cannot be cancelled.
    let status = client
        .cancel_order(cancel("x", &created.order_id, "changed my mind"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "ILLEGAL_TRANSITION");
    assert_eq!(
        order(&mut client, &created.order_id).await.status(),
        pb::OrderStatus::Confirmed
    );
}

#[tokio::test]
async fn a_cancelled_order_keeps_its_reason_and_cannot_be_confirmed() {
    let (_server, mut client) = spawn(Options::default()).await;
    let created = client
        .create_order(create("c", "cust-1"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let cancelled = client
        .cancel_order(cancel("x", &created.order_id, "card_declined"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(cancelled.status(), pb::OrderStatus::Cancelled);
    assert_eq!(cancelled.cancel_reason, "card_declined");
    let status = client
        .confirm_order(confirm("k", &created.order_id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    // Cancelling again under another key changes nothing.
    client
        .cancel_order(cancel("y", &created.order_id, "again"))
        .await
        .unwrap();
    assert_eq!(statuses(&mut client, &created.order_id).await.len(), 2);
}

#[tokio::test]
async fn replay_creates_once_and_reuse_is_rejected() {
    let (_server, mut client) = spawn(Options::default()).await;
    let first = client
        .create_order(create("k", "cust-9"))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .create_order(create("k", "cust-9"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    let list = client
        .list_orders(pb::ListOrdersRequest {
            customer_id: "cust-9".into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.orders.len(), 1, "one order");
    let status = client
        .create_order(create("k", "cust-10"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn a_checkout_gets_one_order_whatever_key_asks_for_another() {
    let (_server, mut client) = spawn(Options::default()).await;
    let first = client
        .create_order(create("first", "cust-one"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(first.checkout_id, checkout_of("first"));

    // Another key, the same checkout: refused, naming only the checkout the caller sent.
    let second = pb::CreateOrderRequest {
        idempotency_key: "second".into(),
        ..create("first", "cust-one")
    };
    let refused = client.create_order(second.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "CHECKOUT_ALREADY_ORDERED");
    assert!(
        refused.message().contains(&checkout_of("first")),
        "{refused:?}"
    );
    assert!(!refused.message().contains(&first.order_id), "{refused:?}");
    // Nothing was kept under the refused key: asked again, it is refused again.
    let again = client.create_order(second).await.unwrap_err();
    assert_eq!(reason(&again), "CHECKOUT_ALREADY_ORDERED");

    // The first key still answers with its order.
    let replayed = client
        .create_order(create("first", "cust-one"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(replayed.order_id, first.order_id);
    let list = client
        .list_orders(pb::ListOrdersRequest {
            customer_id: "cust-one".into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.orders.len(), 1, "{list:?}");

    // An order names its checkout.
    let mut without = create("none", "cust-one");
    without.checkout_id = "not-a-uuid".into();
    let refused = client.create_order(without).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&refused), ["checkout_id"]);
}

#[tokio::test]
async fn cancel_before_create_wins_over_the_late_create() {
    let (_server, mut client) = spawn(Options::default()).await;
    let early = client
        .cancel_order(pb::CancelOrderRequest {
            idempotency_key: "saga/cancel".into(),
            order_id: String::new(),
            create_idempotency_key: "saga/create".into(),
            reason: "dependency_unavailable".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(early.order, None);
    let late = client
        .create_order(create("saga/create", "cust-late"))
        .await
        .unwrap_err();
    assert_eq!(reason(&late), "CANCELLED_BEFORE_CREATED");
    let list = client
        .list_orders(pb::ListOrdersRequest {
            customer_id: "cust-late".into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(list.orders.is_empty());
}

#[tokio::test]
async fn list_pages_newest_first() {
    let (_server, mut client) = spawn(Options::default()).await;
    let mut created = Vec::new();
    for i in 0..5 {
        let o = client
            .create_order(create(&format!("k{i}"), "cust-p"))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        created.push(o.order_id);
    }
    client
        .create_order(create("other", "cust-q"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_orders(pb::ListOrdersRequest {
                customer_id: "cust-p".into(),
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.orders.into_iter().map(|o| o.order_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    created.reverse();
    assert_eq!(seen, created);
}

#[tokio::test]
async fn bad_input_names_every_field_and_changes_nothing() {
    let (_server, mut client) = spawn(Options::default()).await;
    let mut req = create("k", "");
    req.lines = vec![
        line("MUG", 0, 700),
        pb::OrderLine {
            sku: "TEE".into(),
            quantity: 2,
            unit_price: eur(100),
            line_total: eur(150),
        },
        pb::OrderLine {
            sku: "CAP".into(),
            quantity: 1,
            unit_price: Some(common::Money {
                amount_minor: 5,
                currency: "USD".into(),
            }),
            line_total: Some(common::Money {
                amount_minor: 5,
                currency: "USD".into(),
            }),
        },
        line("MUG", 1, 700),
    ];
    req.shipping_address = None;
    let status = client.create_order(req).await.unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "customer_id",
            "lines[3].sku",
            "lines[0].quantity",
            // 0 × 700: under the smallest price every service accepts.
            "lines[0].line_total.amount_minor",
            "lines[1].line_total.amount_minor",
            "lines[2].unit_price.currency",
            "shipping_address"
        ]
    );
    let mut empty = create("k", "c");
    empty.lines.clear();
    assert_eq!(
        bad_fields(&client.create_order(empty).await.unwrap_err()),
        ["lines"]
    );
    let status = client
        .cancel_order(cancel("k", "zzz", ""))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["order_id", "reason"]);
    let status = client
        .confirm_order(confirm("k", &uuid::Uuid::now_v7().to_string()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .list_orders(pb::ListOrdersRequest {
            customer_id: "c".into(),
            page_size: -1,
            page_token: "00".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["page_size", "page_token"]);

    // The key of the rejected create was not consumed.
    client.create_order(create("k", "cust")).await.unwrap();
}

#[tokio::test]
async fn injected_fault_then_success_and_ignored_when_off() {
    let fault = "svc=order-svc,method=ConfirmOrder,code=aborted";
    let (_on, mut client) = spawn(Options {
        fault_injection: true,
        ..Options::default()
    })
    .await;
    let id = client
        .create_order(create("c", "cust"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
        .order_id;
    let status = client
        .confirm_order(testing::with_fault(confirm("k", &id), fault, "k"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(
        order(&mut client, &id).await.status(),
        pb::OrderStatus::Pending
    );
    client
        .confirm_order(testing::with_fault(confirm("k", &id), fault, "k"))
        .await
        .unwrap();
    assert_eq!(
        order(&mut client, &id).await.status(),
        pb::OrderStatus::Confirmed
    );

    let (_off, mut client) = spawn(Options::default()).await;
    let id = client
        .create_order(create("c", "cust"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
        .order_id;
    client
        .confirm_order(testing::with_fault(confirm("k", &id), fault, "k"))
        .await
        .unwrap();
}
