//! inventory-svc through its gRPC API, against a real Postgres database per test.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use futures::future::join_all;
use platform::testing::{self, Options, TestServer, bad_fields, reason};
use shop_proto::common::v1 as common;
use shop_proto::inventory::v1::{self as pb, inventory_service_client::InventoryServiceClient};
use tonic::{Code, transport::Channel};

type Client = InventoryServiceClient<Channel>;

async fn spawn(options: Options) -> (TestServer, Client) {
    let server = testing::spawn(inventory_svc::NAME, options, inventory_svc::build).await;
    let client = InventoryServiceClient::new(server.channel.clone());
    (server, client)
}

fn eur(amount_minor: i64) -> Option<common::Money> {
    Some(common::Money {
        amount_minor,
        currency: "EUR".into(),
    })
}

fn line(sku: &str, quantity: i32) -> pb::CartLine {
    pb::CartLine {
        sku: sku.into(),
        quantity,
    }
}

async fn product(client: &mut Client, sku: &str, price: i64, stock: i64) {
    client
        .upsert_product(pb::UpsertProductRequest {
            sku: sku.into(),
            name: format!("Product {sku}"),
            unit_price: eur(price),
        })
        .await
        .unwrap();
    client
        .set_stock(pb::SetStockRequest {
            sku: sku.into(),
            quantity: stock,
        })
        .await
        .unwrap();
}

async fn stock(client: &mut Client, sku: &str) -> (i64, i64) {
    let s = client
        .get_stock(pb::GetStockRequest { sku: sku.into() })
        .await
        .unwrap()
        .into_inner();
    (s.available, s.reserved)
}

fn reserve(key: &str, order_id: &str, lines: Vec<pb::CartLine>) -> pb::ReserveStockRequest {
    pb::ReserveStockRequest {
        idempotency_key: key.into(),
        order_id: order_id.into(),
        lines,
    }
}

fn order_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[tokio::test]
async fn catalog_upsert_get_and_paginated_list() {
    let (_server, mut client) = spawn(Options::default()).await;
    for i in 0..5 {
        product(&mut client, &format!("SKU-{i}"), 100 + i, 1).await;
    }
    let got = client
        .get_product(pb::GetProductRequest {
            sku: "SKU-3".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(got.unit_price, eur(103));

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_products(pb::ListProductsRequest {
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.products.len() <= 2);
        seen.extend(page.products.into_iter().map(|p| p.sku));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["SKU-0", "SKU-1", "SKU-2", "SKU-3", "SKU-4"]);

    // A price change replaces the old one; stock is kept.
    client
        .upsert_product(pb::UpsertProductRequest {
            sku: "SKU-3".into(),
            name: "Renamed".into(),
            unit_price: eur(999),
        })
        .await
        .unwrap();
    let cart = client
        .price_cart(pb::PriceCartRequest {
            lines: vec![line("SKU-3", 2)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cart.total, eur(1998));
    assert_eq!(stock(&mut client, "SKU-3").await, (1, 0));
}

#[tokio::test]
async fn price_cart_totals_lines_and_reports_unknown_skus() {
    let (_server, mut client) = spawn(Options::default()).await;
    product(&mut client, "MUG", 700, 10).await;
    product(&mut client, "TEE", 1500, 10).await;
    let cart = client
        .price_cart(pb::PriceCartRequest {
            lines: vec![line("MUG", 3), line("TEE", 1)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cart.total, eur(3600));
    assert_eq!(cart.lines[0].line_total, eur(2100));

    let status = client
        .price_cart(pb::PriceCartRequest {
            lines: vec![line("MUG", 1), line("NOPE", 1), line("GONE", 1)],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("NOPE") && status.message().contains("GONE"));
}

#[tokio::test]
async fn reserve_then_release_moves_units_and_back() {
    let (_server, mut client) = spawn(Options::default()).await;
    product(&mut client, "A", 100, 10).await;
    product(&mut client, "B", 100, 5).await;
    let order = order_id();
    let reserved = client
        .reserve_stock(reserve("r-1", &order, vec![line("B", 5), line("A", 3)]))
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    assert_eq!(reserved.status(), pb::ReservationStatus::Reserved);
    assert_eq!(stock(&mut client, "A").await, (7, 3));
    assert_eq!(stock(&mut client, "B").await, (0, 5));

    let by_order = client
        .get_reservation(pb::GetReservationRequest {
            order_id: order.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    assert_eq!(by_order.reservation_id, reserved.reservation_id);

    let released = client
        .release_stock(pb::ReleaseStockRequest {
            idempotency_key: "rel-1".into(),
            reservation_id: reserved.reservation_id.clone(),
            reserve_idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    assert_eq!(released.status(), pb::ReservationStatus::Released);
    assert_eq!(stock(&mut client, "A").await, (10, 0));
    assert_eq!(stock(&mut client, "B").await, (5, 0));
}

#[tokio::test]
async fn a_short_line_reserves_nothing() {
    let (_server, mut client) = spawn(Options::default()).await;
    product(&mut client, "A", 100, 10).await;
    product(&mut client, "B", 100, 1).await;
    let status = client
        .reserve_stock(reserve(
            "r-1",
            &order_id(),
            vec![line("A", 2), line("B", 2)],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "OUT_OF_STOCK");
    assert!(status.message().contains('B'));
    assert_eq!(stock(&mut client, "A").await, (10, 0));
    assert_eq!(stock(&mut client, "B").await, (1, 0));
}

#[tokio::test]
async fn replay_returns_the_first_result_and_reuse_is_rejected() {
    let (_server, mut client) = spawn(Options::default()).await;
    product(&mut client, "A", 100, 10).await;
    let order = order_id();
    let first = client
        .reserve_stock(reserve("same-key", &order, vec![line("A", 4)]))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .reserve_stock(reserve("same-key", &order, vec![line("A", 4)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(stock(&mut client, "A").await, (6, 4), "reserved once");

    let status = client
        .reserve_stock(reserve("same-key", &order, vec![line("A", 5)]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(stock(&mut client, "A").await, (6, 4));

    // Another key for the same order is refused while the first reservation is live.
    let status = client
        .reserve_stock(reserve("other-key", &order, vec![line("A", 1)]))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "ORDER_ALREADY_RESERVED");
}

#[tokio::test]
async fn release_before_reserve_wins_over_the_late_reserve() {
    let (_server, mut client) = spawn(Options::default()).await;
    product(&mut client, "A", 100, 10).await;
    let release = pb::ReleaseStockRequest {
        idempotency_key: "saga-1/release".into(),
        reservation_id: String::new(),
        reserve_idempotency_key: "saga-1/reserve".into(),
    };
    let early = client
        .release_stock(release.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(early.reservation, None, "nothing was reserved yet");

    let late = client
        .reserve_stock(reserve("saga-1/reserve", &order_id(), vec![line("A", 3)]))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert_eq!(reason(&late), "RELEASED_BEFORE_RESERVED");
    assert_eq!(stock(&mut client, "A").await, (10, 0));

    // The release replays to the same answer.
    let replay = client.release_stock(release).await.unwrap().into_inner();
    assert_eq!(replay, early);
}

#[tokio::test]
async fn release_by_reserve_key_undoes_a_completed_reserve_once() {
    let (_server, mut client) = spawn(Options::default()).await;
    product(&mut client, "A", 100, 10).await;
    client
        .reserve_stock(reserve("saga-2/reserve", &order_id(), vec![line("A", 3)]))
        .await
        .unwrap();
    let release = pb::ReleaseStockRequest {
        idempotency_key: "saga-2/release".into(),
        reservation_id: String::new(),
        reserve_idempotency_key: "saga-2/reserve".into(),
    };
    for _ in 0..2 {
        let released = client
            .release_stock(release.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            released.reservation.unwrap().status(),
            pb::ReservationStatus::Released
        );
    }
    assert_eq!(stock(&mut client, "A").await, (10, 0), "returned once");
}

#[tokio::test]
async fn fifty_concurrent_reservations_for_ten_units_reserve_exactly_ten() {
    let (_server, mut client) = spawn(Options::default()).await;
    product(&mut client, "LAST", 100, 10).await;
    let attempts = (0..50).map(|i| {
        let mut client = client.clone();
        async move {
            client
                .reserve_stock(reserve(
                    &format!("race-{i}"),
                    &order_id(),
                    vec![line("LAST", 1)],
                ))
                .await
        }
    });
    let results = join_all(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let out_of_stock = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|s| reason(s) == "OUT_OF_STOCK")
        .count();
    assert_eq!(won, 10);
    assert_eq!(out_of_stock, 40, "every loser is told why");
    assert_eq!(stock(&mut client, "LAST").await, (0, 10));
}

#[tokio::test]
async fn bad_input_names_every_field_and_changes_nothing() {
    let (_server, mut client) = spawn(Options::default()).await;
    product(&mut client, "A", 100, 10).await;

    let status = client
        .upsert_product(pb::UpsertProductRequest {
            sku: "bad sku!".into(),
            name: String::new(),
            unit_price: Some(common::Money {
                amount_minor: -5,
                currency: "euro".into(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "sku",
            "name",
            "unit_price.amount_minor",
            "unit_price.currency"
        ]
    );

    let status = client
        .reserve_stock(pb::ReserveStockRequest {
            idempotency_key: String::new(),
            order_id: "not-a-uuid".into(),
            lines: vec![line("A", 0), line("A", 1001)],
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "idempotency_key",
            "order_id",
            "lines[0].quantity",
            "lines[1].quantity",
            "lines[1].sku"
        ]
    );

    let too_many = (0..101).map(|i| line(&format!("S{i}"), 1)).collect();
    let status = client
        .reserve_stock(reserve("k", &order_id(), too_many))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["lines"]);

    let status = client
        .set_stock(pb::SetStockRequest {
            sku: "A".into(),
            quantity: -1,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["quantity"]);

    let status = client
        .release_stock(pb::ReleaseStockRequest {
            idempotency_key: "k".into(),
            reservation_id: String::new(),
            reserve_idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["reservation_id"]);

    let status = client
        .list_products(pb::ListProductsRequest {
            page_size: 501,
            page_token: "zz".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["page_size", "page_token"]);

    assert_eq!(stock(&mut client, "A").await, (10, 0));
}

#[tokio::test]
async fn unknown_things_are_not_found() {
    let (_server, mut client) = spawn(Options::default()).await;
    let status = client
        .get_stock(pb::GetStockRequest { sku: "NOPE".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .set_stock(pb::SetStockRequest {
            sku: "NOPE".into(),
            quantity: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .reserve_stock(reserve("k", &order_id(), vec![line("NOPE", 1)]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .release_stock(pb::ReleaseStockRequest {
            idempotency_key: "k2".into(),
            reservation_id: order_id(),
            reserve_idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn injected_faults_fail_the_first_calls_per_key_then_let_through() {
    let (_server, mut client) = spawn(Options {
        fault_injection: true,
        ..Options::default()
    })
    .await;
    product(&mut client, "A", 100, 10).await;
    let fault = "svc=inventory-svc,method=ReserveStock,code=unavailable,times=2";
    let order = order_id();
    for _ in 0..2 {
        let status = client
            .reserve_stock(testing::with_fault(
                reserve("f-1", &order, vec![line("A", 1)]),
                fault,
                "f-1",
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            stock(&mut client, "A").await,
            (10, 0),
            "a failed call changes nothing"
        );
    }
    client
        .reserve_stock(testing::with_fault(
            reserve("f-1", &order, vec![line("A", 1)]),
            fault,
            "f-1",
        ))
        .await
        .unwrap();
    assert_eq!(stock(&mut client, "A").await, (9, 1));

    // A late success: the work is done even though the answer is held back.
    let late = "svc=inventory-svc,method=ReserveStock,after_ms=300";
    let mut request =
        testing::with_fault(reserve("f-2", &order_id(), vec![line("A", 1)]), late, "f-2");
    request.set_timeout(std::time::Duration::from_millis(100));
    let status = client.reserve_stock(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{status:?}"
    );
    assert_eq!(
        stock(&mut client, "A").await,
        (8, 2),
        "reserved although the caller gave up"
    );
}

#[tokio::test]
async fn fault_metadata_is_ignored_when_faults_are_off() {
    let (_server, mut client) = spawn(Options::default()).await;
    product(&mut client, "A", 100, 10).await;
    let fault = "svc=inventory-svc,method=ReserveStock,code=unavailable,times=5";
    client
        .reserve_stock(testing::with_fault(
            reserve("f-1", &order_id(), vec![line("A", 1)]),
            fault,
            "f-1",
        ))
        .await
        .unwrap();
    assert_eq!(stock(&mut client, "A").await, (9, 1));
}
