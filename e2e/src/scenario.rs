//! What the end-to-end suites share: a stack with a catalog, requests, clients that retry
//! like real ones, and the invariant check over every checkout. Test support: a failure
//! panics with what went wrong.

use std::{collections::BTreeMap, time::Duration};

use futures::future::join_all;

use shop_proto::{checkout::v1 as pb, common::v1 as common, inventory::v1 as inventory};
use tonic::{Code, Request};

use crate::{
    Stack, StackOptions,
    clients::Clients,
    invariants::{check_checkout, check_stock},
};

/// Short timeouts so failure scenarios take seconds, and faults obeyed.
pub fn options() -> StackOptions {
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    };
    StackOptions {
        fault_injection: true,
        orchestrator_env: env(&[
            ("ATTEMPT_TIMEOUT", "500ms"),
            ("STEP_DEADLINE", "3s"),
            ("RETRY_BACKOFF_BASE", "20ms"),
            ("RETRY_BACKOFF_MAX", "200ms"),
            ("SAGA_LEASE", "2s"),
            ("RECOVERY_INTERVAL", "300ms"),
        ]),
        // Small pools: a test's stack needs few connections, and several stacks (tests
        // run in parallel) share one Postgres and its max_connections.
        env: env(&[("DATABASE_MAX_CONNECTIONS", "4")]),
        ..StackOptions::default()
    }
}

pub async fn stack_with(products: &[(&str, i64, i64)]) -> (Stack, Clients) {
    stack_with_options(options(), products).await
}

/// A stack started with `options`, its catalog as [`stack_with`] makes it.
pub async fn stack_with_options(
    options: StackOptions,
    products: &[(&str, i64, i64)],
) -> (Stack, Clients) {
    let stack = Stack::start(options).await.expect("the stack starts");
    let mut clients = Clients::of(&stack);
    for (sku, price, units) in products {
        clients
            .inventory
            .upsert_product(inventory::UpsertProductRequest {
                sku: (*sku).into(),
                name: (*sku).into(),
                unit_price: Some(common::Money {
                    amount_minor: *price,
                    currency: "EUR".into(),
                }),
            })
            .await
            .expect("a test call succeeds");
        clients
            .inventory
            .set_stock(inventory::SetStockRequest {
                sku: (*sku).into(),
                quantity: *units,
            })
            .await
            .expect("a test call succeeds");
    }
    (stack, clients)
}

pub fn place(
    key: &str,
    token: &str,
    country: &str,
    items: &[(&str, i32)],
) -> pb::PlaceOrderRequest {
    place_in(
        pb::CoordinationMode::Unspecified,
        key,
        token,
        country,
        items,
    )
}

/// [`place`] in a given coordination mode.
pub fn place_in(
    mode: pb::CoordinationMode,
    key: &str,
    token: &str,
    country: &str,
    items: &[(&str, i32)],
) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        mode: mode.into(),
        idempotency_key: key.into(),
        customer_id: "e2e".into(),
        items: items
            .iter()
            .map(|(sku, quantity)| pb::LineItem {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
        payment_token: token.into(),
        shipping_address: Some(common::Address {
            name: "Ada".into(),
            line1: "1 Road".into(),
            line2: String::new(),
            city: "Lyon".into(),
            postal_code: "69001".into(),
            country: country.into(),
        }),
    }
}

pub fn request(
    message: pb::PlaceOrderRequest,
    fault: Option<&str>,
    timeout: Duration,
) -> Request<pb::PlaceOrderRequest> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    if let Some(fault) = fault {
        request
            .metadata_mut()
            .insert("x-fault", fault.parse().expect("a test call succeeds"));
    }
    request
}

/// Places an order with a short deadline, for a checkout meant to go on after PlaceOrder
/// answers. On a busy machine the first call (a TLS handshake first) may not make it in
/// time: the same key again, like any client, with more time.
pub async fn place_briefly(clients: &Clients, message: pb::PlaceOrderRequest) -> pb::Checkout {
    place_briefly_with(clients, message, None).await
}

/// [`place_briefly`] with `fault` specs (docs/FAULTS.md) on the call.
pub async fn place_briefly_with(
    clients: &Clients,
    message: pb::PlaceOrderRequest,
    fault: Option<&str>,
) -> pb::Checkout {
    let mut client = clients.checkout.clone();
    for deadline in [300, 2_000, 10_000] {
        let call = request(message.clone(), fault, Duration::from_millis(deadline));
        match client.place_order(call).await {
            Ok(reply) => return reply.into_inner().checkout.expect("a checkout"),
            Err(status)
                if matches!(
                    status.code(),
                    Code::Cancelled | Code::DeadlineExceeded | Code::Unavailable
                ) => {}
            Err(status) => panic!("PlaceOrder {}: {status:?}", message.idempotency_key),
        }
    }
    panic!("PlaceOrder {} never answered", message.idempotency_key);
}

/// GetCheckout by checkout id, through the front door.
pub async fn get_checkout(clients: &mut Clients, checkout_id: &str) -> pb::Checkout {
    clients
        .checkout
        .get_checkout(pb::GetCheckoutRequest {
            checkout_id: checkout_id.into(),
            order_id: String::new(),
        })
        .await
        .expect("GetCheckout answers")
        .into_inner()
        .checkout
        .expect("a checkout")
}

/// Places an order, retrying like a real client while the front door is down.
pub async fn place_until_accepted(
    clients: &Clients,
    message: pb::PlaceOrderRequest,
    fault: Option<&str>,
) -> pb::Checkout {
    let mut client = clients.checkout.clone();
    for _ in 0..200 {
        match client
            .place_order(request(message.clone(), fault, Duration::from_secs(20)))
            .await
        {
            Ok(reply) => return reply.into_inner().checkout.expect("a test call succeeds"),
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::Cancelled | Code::Unknown
                ) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("PlaceOrder {}: {status:?}", message.idempotency_key),
        }
    }
    panic!("PlaceOrder {} never accepted", message.idempotency_key);
}

/// Waits until every checkout ends (at most ~60 s).
pub async fn all_terminal(clients: &mut Clients) -> Vec<pb::Checkout> {
    for _ in 0..600 {
        let list = all_checkouts(clients).await;
        if list.iter().all(|c| {
            matches!(
                c.status(),
                pb::CheckoutStatus::Completed | pb::CheckoutStatus::Cancelled
            )
        }) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("some checkouts never ended");
}

/// Every checkout, newest first, read page by page (100 a page, the most the shop
/// serves).
pub async fn all_checkouts(clients: &mut Clients) -> Vec<pb::Checkout> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .checkout
            .list_checkouts(pb::ListCheckoutsRequest {
                mode: pb::CoordinationMode::Unspecified.into(),
                page_size: 100,
                page_token,
                status: 0,
                customer_id: String::new(),
            })
            .await
            .expect("a test call succeeds")
            .into_inner();
        all.extend(page.checkouts);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// Every invariant for every checkout, plus stock conservation for each stocked sku.
pub async fn assert_invariants(
    clients: &mut Clients,
    checkouts: &[pb::Checkout],
    stocked: &[(&str, i64)],
) {
    let mut units = BTreeMap::new();
    let mut violations = Vec::new();
    for c in checkouts {
        violations.extend(
            check_checkout(clients, &c.checkout_id, &mut units)
                .await
                .expect("a test call succeeds"),
        );
    }
    for (sku, stocked) in stocked {
        let sold = units.get(*sku).copied().unwrap_or(0);
        violations.extend(
            check_stock(clients, sku, *stocked, sold)
                .await
                .expect("a test call succeeds"),
        );
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Asserts every checkout either completed or was cancelled as `dependency_unavailable`
/// (a call missed its deadline and everything was undone): the only outcomes a fault in
/// the machinery, rather than in the order, may cause.
pub fn assert_completed_or_undone(checkouts: &[pb::Checkout]) {
    for c in checkouts {
        let ok = c.status() == pb::CheckoutStatus::Completed
            || c.failure_reason == "dependency_unavailable";
        assert!(ok, "{c:#?}");
    }
}

/// `count` checkouts of one unit of `sku` (keys `<sku>-<i>`), the i-th placed after
/// i × `gap`, each repeated with its key until the front door accepts it.
pub fn place_spread(
    clients: &Clients,
    sku: &'static str,
    count: u32,
    gap: Duration,
    fault: Option<&'static str>,
) -> Vec<tokio::task::JoinHandle<pb::Checkout>> {
    (0..count)
        .map(|i| {
            let clients = clients.clone();
            tokio::spawn(async move {
                tokio::time::sleep(gap * i).await;
                let message = place(&format!("{sku}-{i}"), "tok_visa", "FR", &[(sku, 1)]);
                place_until_accepted(&clients, message, fault).await
            })
        })
        .collect()
}

/// Waits for every client task, then for every checkout to end: one per key, and every
/// invariant holding for the units of `stocked` (sku, units stocked).
pub async fn every_checkout_ends(
    clients: &mut Clients,
    calls: Vec<tokio::task::JoinHandle<pb::Checkout>>,
    stocked: (&str, i64),
) -> Vec<pb::Checkout> {
    let placed = calls.len();
    for call in join_all(calls).await {
        call.expect("the client task");
    }
    let checkouts = all_terminal(clients).await;
    assert_eq!(checkouts.len(), placed, "one checkout per key");
    assert_invariants(clients, &checkouts, &[stocked]).await;
    checkouts
}
