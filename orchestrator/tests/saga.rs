//! The checkout saga against real Postgres and the real domain servers, all in-process
//! on port 0. After each scenario the invariants of docs/CONTRACT.md are checked through the
//! services' read RPCs, as an outsider would.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use e2e::{
    clients::{Clients, Urls},
    invariants::check_checkout,
};
use futures::{StreamExt, future::join_all};
use orchestrator::{config::Settings, driver::engine::Engine};
use platform::{
    reason::Reason,
    testing::{self, Options, TestServer, bad_fields},
};
use shop_proto::common::v1 as common;
use shop_proto::{
    checkout::v1::{self as pb, checkout_service_client::CheckoutServiceClient},
    inventory::v1::{self as inventory, inventory_service_client::InventoryServiceClient},
    payment::v1::{self as payment, payment_service_client::PaymentServiceClient},
};
use tonic::{Code, Request, transport::Channel};

/// The four domain services and one or more orchestrators over one saga database.
struct Stack {
    order: TestServer,
    payment: TestServer,
    inventory: TestServer,
    shipping: TestServer,
    orchestrator: TestServer,
    engine: Arc<Engine>,
}

fn settings(stack: &Stack) -> Settings {
    settings_for(
        &stack.order,
        &stack.payment,
        &stack.inventory,
        &stack.shipping,
    )
}

/// Fast knobs so failure scenarios take fractions of a second.
fn settings_for(o: &TestServer, p: &TestServer, i: &TestServer, s: &TestServer) -> Settings {
    let mut settings = Settings::with_urls(o.url(), p.url(), i.url(), s.url());
    settings.lease = Duration::from_secs(2);
    settings.recovery_interval = Duration::from_millis(200);
    let r = &mut settings.resilience;
    r.attempt_timeout = Duration::from_millis(400);
    r.step_deadline = Duration::from_secs(3);
    r.max_retries = 4;
    r.backoff_base = Duration::from_millis(10);
    r.backoff_max = Duration::from_millis(100);
    settings
}

/// Starts an orchestrator on `database_url` and hands back its engine too.
async fn orchestrator_on(
    database_url: Option<&str>,
    settings: Settings,
) -> (TestServer, Arc<Engine>) {
    let slot: Arc<Mutex<Option<Arc<Engine>>>> = Arc::default();
    let keep = slot.clone();
    let build = move |config| async move {
        let (app, engine) = orchestrator::build_with_engine(config, settings).await?;
        *keep.lock().unwrap() = Some(engine);
        Ok(app)
    };
    let server = match database_url {
        Some(url) => testing::serve(url, Options::default(), build).await,
        None => testing::spawn(orchestrator::NAME, Options::default(), build).await,
    };
    let engine = slot.lock().unwrap().take().unwrap();
    (server, engine)
}

async fn stack() -> Stack {
    let faults = Options {
        fault_injection: true,
        ..Options::default()
    };
    let order = testing::spawn(order_svc::NAME, faults.clone(), order_svc::build).await;
    let payment = testing::spawn(payment_svc::NAME, faults.clone(), payment_svc::build).await;
    let inventory = testing::spawn(inventory_svc::NAME, faults.clone(), inventory_svc::build).await;
    let shipping = testing::spawn(shipping_svc::NAME, faults, shipping_svc::build).await;
    let (orchestrator, engine) =
        orchestrator_on(None, settings_for(&order, &payment, &inventory, &shipping)).await;
    let stack = Stack {
        order,
        payment,
        inventory,
        shipping,
        orchestrator,
        engine,
    };
    product(&stack, "MUG", 700, 10).await;
    product(&stack, "TEE", 1500, 5).await;
    stack
}

impl Stack {
    fn checkout(&self) -> CheckoutServiceClient<Channel> {
        CheckoutServiceClient::new(self.orchestrator.channel.clone())
    }
    fn inventory(&self) -> InventoryServiceClient<Channel> {
        InventoryServiceClient::new(self.inventory.channel.clone())
    }
}

async fn product(stack: &Stack, sku: &str, price: i64, units: i64) {
    let mut inv = stack.inventory();
    inv.upsert_product(inventory::UpsertProductRequest {
        sku: sku.into(),
        name: sku.into(),
        unit_price: Some(common::Money {
            amount_minor: price,
            currency: "EUR".into(),
        }),
    })
    .await
    .unwrap();
    inv.set_stock(inventory::SetStockRequest {
        sku: sku.into(),
        quantity: units,
    })
    .await
    .unwrap();
}

fn place(key: &str, token: &str, country: &str, items: &[(&str, i32)]) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        mode: pb::CoordinationMode::Orchestrated.into(),
        idempotency_key: key.into(),
        customer_id: "cust-1".into(),
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

fn with_fault(message: pb::PlaceOrderRequest, fault: &str) -> Request<pb::PlaceOrderRequest> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-fault", fault.parse().unwrap());
    request
}

async fn place_order(
    stack: &Stack,
    request: impl tonic::IntoRequest<pb::PlaceOrderRequest>,
) -> pb::Checkout {
    stack
        .checkout()
        .place_order(request)
        .await
        .unwrap()
        .into_inner()
        .checkout
        .unwrap()
}

async fn get(stack: &Stack, checkout_id: &str) -> pb::Checkout {
    stack
        .checkout()
        .get_checkout(pb::GetCheckoutRequest {
            checkout_id: checkout_id.into(),
            order_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .checkout
        .unwrap()
}

/// Polls (up to 15 s) until the checkout's status is one of `statuses`.
async fn poll_until(
    stack: &Stack,
    checkout_id: &str,
    statuses: &[pb::CheckoutStatus],
) -> pb::Checkout {
    for _ in 0..300 {
        let c = get(stack, checkout_id).await;
        if statuses.contains(&c.status()) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("checkout {checkout_id} never reached {statuses:?}");
}

/// Polls until the checkout ends (recovery scenarios).
async fn terminal(stack: &Stack, checkout_id: &str) -> pb::Checkout {
    let ended = [pb::CheckoutStatus::Completed, pb::CheckoutStatus::Cancelled];
    poll_until(stack, checkout_id, &ended).await
}

async fn stock(stack: &Stack, sku: &str) -> (i64, i64) {
    let s = stack
        .inventory()
        .get_stock(inventory::GetStockRequest { sku: sku.into() })
        .await
        .unwrap()
        .into_inner();
    (s.available, s.reserved)
}

fn step<'a>(c: &'a pb::Checkout, name: &str) -> &'a pb::Step {
    c.steps.iter().find(|s| s.name == name).unwrap()
}

/// The invariants of docs/CONTRACT.md for one checkout, read through the services' APIs by
/// the same checker the end-to-end suite and the load generator use.
async fn assert_invariants(stack: &Stack, c: &pb::Checkout) {
    let mut clients = Clients::at(
        &Urls {
            orchestrator: stack.orchestrator.url(),
            order: stack.order.url(),
            payment: stack.payment.url(),
            inventory: stack.inventory.url(),
            shipping: stack.shipping.url(),
        },
        &platform::security::Security::DevInsecure,
        platform::security::token::AttachToken::none(),
    )
    .unwrap();
    let mut units = std::collections::BTreeMap::new();
    let violations = check_checkout(&mut clients, &c.checkout_id, &mut units)
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test]
async fn happy_path_completes_with_every_effect_in_place() {
    let stack = stack().await;
    let c = place_order(
        &stack,
        place("k1", "tok_visa", "FR", &[("MUG", 2), ("TEE", 1)]),
    )
    .await;
    assert_eq!(c.status(), pb::CheckoutStatus::Completed, "{c:?}");
    assert_eq!(c.total.as_ref().unwrap().amount_minor, 2900);
    assert!(
        c.steps
            .iter()
            .all(|s| s.status() == pb::StepStatus::Succeeded)
    );
    assert_eq!(c.steps.len(), 6);
    assert_invariants(&stack, &c).await;
    assert_eq!(stock(&stack, "MUG").await, (8, 2));

    let by_order = stack
        .checkout()
        .get_checkout(pb::GetCheckoutRequest {
            checkout_id: String::new(),
            order_id: c.order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .checkout
        .unwrap();
    assert_eq!(by_order.checkout_id, c.checkout_id);
}

#[tokio::test]
async fn declined_card_charges_nothing_holds_nothing_and_cancels_the_order() {
    let stack = stack().await;
    for (token, reason) in [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
    ] {
        let c = place_order(&stack, place(token, token, "FR", &[("MUG", 1)])).await;
        assert_eq!(c.status(), pb::CheckoutStatus::Cancelled);
        assert_eq!(c.failure_reason, reason);
        assert_eq!(step(&c, "charge_payment").status(), pb::StepStatus::Failed);
        assert_eq!(
            step(&c, "create_order").status(),
            pb::StepStatus::Compensated
        );
        assert_eq!(step(&c, "reserve_stock").status(), pb::StepStatus::Skipped);
        assert_invariants(&stack, &c).await;
    }
    assert_eq!(stock(&stack, "MUG").await, (10, 0));
}

#[tokio::test]
async fn out_of_stock_refunds_and_cancels() {
    let stack = stack().await;
    let c = place_order(&stack, place("k", "tok_visa", "FR", &[("TEE", 6)])).await;
    assert_eq!(c.status(), pb::CheckoutStatus::Cancelled);
    assert_eq!(c.failure_reason, "out_of_stock");
    assert_eq!(
        step(&c, "charge_payment").status(),
        pb::StepStatus::Compensated
    );
    assert_invariants(&stack, &c).await;
    let payments = PaymentServiceClient::new(stack.payment.channel.clone())
        .list_payments(payment::ListPaymentsRequest {
            order_id: c.order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .payments;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].status(), payment::PaymentStatus::Refunded);
    assert_eq!(stock(&stack, "TEE").await, (5, 0));
}

#[tokio::test]
async fn undeliverable_address_after_charge_and_reservation_releases_refunds_and_cancels() {
    let stack = stack().await;
    let c = place_order(&stack, place("k", "tok_visa", "AQ", &[("MUG", 3)])).await;
    assert_eq!(c.status(), pb::CheckoutStatus::Cancelled);
    assert_eq!(c.failure_reason, "undeliverable_address");
    for name in ["reserve_stock", "charge_payment", "create_order"] {
        assert_eq!(
            step(&c, name).status(),
            pb::StepStatus::Compensated,
            "{name}"
        );
    }
    assert_eq!(step(&c, "create_shipment").status(), pb::StepStatus::Failed);
    assert_eq!(step(&c, "confirm_order").status(), pb::StepStatus::Skipped);
    assert_invariants(&stack, &c).await;
    assert_eq!(stock(&stack, "MUG").await, (10, 0), "released");
}

#[tokio::test]
async fn a_charge_that_fails_unavailable_twice_is_retried_into_one_capture() {
    let stack = stack().await;
    let fault = "svc=payment-svc,method=Charge,code=unavailable,times=2";
    let c = place_order(
        &stack,
        with_fault(place("k", "tok_visa", "FR", &[("MUG", 1)]), fault),
    )
    .await;
    assert_eq!(c.status(), pb::CheckoutStatus::Completed, "{c:?}");
    assert_eq!(step(&c, "charge_payment").attempts, 3);
    assert_invariants(&stack, &c).await;
}

#[tokio::test]
async fn a_charge_that_succeeds_after_the_attempt_timeout_is_captured_once() {
    let stack = stack().await;
    // The first attempt captures but answers too late; the retry replays the capture.
    let fault = "svc=payment-svc,method=Charge,after_ms=600,times=1";
    let c = place_order(
        &stack,
        with_fault(place("late-once", "tok_visa", "FR", &[("MUG", 1)]), fault),
    )
    .await;
    assert_eq!(c.status(), pb::CheckoutStatus::Completed, "{c:?}");
    assert!(step(&c, "charge_payment").attempts >= 2);
    assert_invariants(&stack, &c).await;

    // Every attempt answers too late: the saga gives up, refunds by the charge key, and
    // the captures that did land are refunded: net zero.
    let fault = "svc=payment-svc,method=Charge,after_ms=600,times=100";
    let c = place_order(
        &stack,
        with_fault(place("late-always", "tok_visa", "FR", &[("MUG", 1)]), fault),
    )
    .await;
    assert_eq!(c.status(), pb::CheckoutStatus::Cancelled, "{c:?}");
    assert_eq!(c.failure_reason, "dependency_unavailable");
    assert_eq!(
        step(&c, "charge_payment").status(),
        pb::StepStatus::Compensated
    );
    assert_invariants(&stack, &c).await;
    assert_eq!(
        stock(&stack, "MUG").await,
        (9, 1),
        "only the first checkout holds stock"
    );
}

#[tokio::test]
async fn compensation_keeps_retrying_while_inventory_is_unavailable() {
    let stack = stack().await;
    // Shipping refuses AQ, then every release attempt fails for a while (two rounds of
    // five attempts), and the third round gets through.
    let fault = "svc=inventory-svc,method=ReleaseStock,code=unavailable,times=10";
    let c = place_order(
        &stack,
        with_fault(place("k", "tok_visa", "AQ", &[("MUG", 2)]), fault),
    )
    .await;
    assert_eq!(c.status(), pb::CheckoutStatus::Cancelled, "{c:?}");
    let release = step(&c, "reserve_stock");
    assert_eq!(release.status(), pb::StepStatus::Compensated);
    assert!(release.compensation_attempts >= 11, "{release:?}");
    assert_eq!(release.last_error_code, "UNAVAILABLE");
    assert_invariants(&stack, &c).await;
    assert_eq!(stock(&stack, "MUG").await, (10, 0));
}

/// Polls until the checkout is parked for a person.
async fn parked(stack: &Stack, checkout_id: &str) -> pb::Checkout {
    poll_until(stack, checkout_id, &[pb::CheckoutStatus::NeedsAttention]).await
}

async fn resume(stack: &Stack, checkout_id: &str) -> Result<pb::Checkout, tonic::Status> {
    stack
        .checkout()
        .resume_checkout(pb::ResumeCheckoutRequest {
            checkout_id: checkout_id.into(),
        })
        .await
        .map(|r| r.into_inner().checkout.unwrap())
}

#[tokio::test]
async fn a_refused_compensation_parks_the_saga_until_an_operator_resumes_it() {
    let stack = stack().await;
    // Shipping refuses AQ; the refund is then refused (once) as if already refunded: no
    // retry changes a refusal, so the saga waits for a person instead of looping.
    let fault = "svc=payment-svc,method=Refund,code=failed_precondition,times=1";
    let c = place_order(
        &stack,
        with_fault(place("k", "tok_visa", "AQ", &[("MUG", 2)]), fault),
    )
    .await;
    let c = parked(&stack, &c.checkout_id).await;
    assert_eq!(c.failure_reason, "undeliverable_address");
    let charge = step(&c, "charge_payment");
    assert_eq!(charge.compensation_attempts, 1, "not retried: {charge:?}");
    assert_eq!(charge.last_error_code, "FAILED_PRECONDITION");
    let listed = stack
        .checkout()
        .list_checkouts(pb::ListCheckoutsRequest {
            status: pb::CheckoutStatus::NeedsAttention.into(),
            ..pb::ListCheckoutsRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .checkouts;
    assert_eq!(listed.len(), 1, "operators find it by status");

    // The cause is gone (the fault fired once): resume, and it unwinds to the end.
    let resumed = resume(&stack, &c.checkout_id).await.unwrap();
    assert_ne!(resumed.status(), pb::CheckoutStatus::NeedsAttention);
    let c = terminal(&stack, &c.checkout_id).await;
    assert_eq!(c.status(), pb::CheckoutStatus::Cancelled, "{c:?}");
    assert_eq!(
        step(&c, "charge_payment").status(),
        pb::StepStatus::Compensated
    );
    assert_invariants(&stack, &c).await;
    assert_eq!(stock(&stack, "MUG").await, (10, 0));

    let again = resume(&stack, &c.checkout_id).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
}

#[tokio::test]
async fn concurrent_resumes_resume_once_and_tell_the_others_it_is_not_parked() {
    let stack = stack().await;
    let fault = "svc=payment-svc,method=Refund,code=failed_precondition,times=1";
    let c = place_order(
        &stack,
        with_fault(place("k", "tok_visa", "AQ", &[("MUG", 2)]), fault),
    )
    .await;
    let c = parked(&stack, &c.checkout_id).await;
    // Operators (or a script retrying) resume the same checkout at once: their claims
    // interleave with each other's first write.
    let results = join_all((0..8).map(|_| resume(&stack, &c.checkout_id))).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "one resume takes it: {results:?}");
    for lost in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(lost.code(), Code::FailedPrecondition, "{lost:?}");
        assert_eq!(
            Reason::of(lost),
            Some(Reason::CheckoutNotParked),
            "{lost:?}"
        );
    }
    let c = terminal(&stack, &c.checkout_id).await;
    assert_eq!(c.status(), pb::CheckoutStatus::Cancelled, "{c:?}");
    assert_invariants(&stack, &c).await;
    assert_eq!(stock(&stack, "MUG").await, (10, 0));
}

#[tokio::test]
async fn a_refused_confirmation_past_the_pivot_parks_and_resumes_forward() {
    let stack = stack().await;
    let fault = "svc=order-svc,method=ConfirmOrder,code=failed_precondition,times=1";
    let c = place_order(
        &stack,
        with_fault(place("k", "tok_visa", "FR", &[("MUG", 1)]), fault),
    )
    .await;
    let c = parked(&stack, &c.checkout_id).await;
    assert_eq!(c.failure_reason, "", "past the pivot: never compensated");
    assert!(!c.tracking_number.is_empty(), "the shipment stays");
    let resumed = resume(&stack, &c.checkout_id).await.unwrap();
    assert_ne!(resumed.status(), pb::CheckoutStatus::NeedsAttention);
    let c = terminal(&stack, &c.checkout_id).await;
    assert_eq!(c.status(), pb::CheckoutStatus::Completed, "{c:?}");
    assert_invariants(&stack, &c).await;
}

#[tokio::test]
async fn a_crashed_orchestrator_is_replaced_and_the_saga_finishes_exactly_once() {
    let stack = stack().await;
    // Hold the saga at create_shipment and confirm_order (each within one attempt's
    // timeout) long enough to crash its orchestrator there.
    let fault = "svc=shipping-svc,method=CreateShipment,before_ms=350;\
                 svc=order-svc,method=ConfirmOrder,before_ms=350";
    let mut request = with_fault(place("crash", "tok_visa", "FR", &[("MUG", 1)]), fault);
    request.set_timeout(Duration::from_millis(500));
    let running = place_order(&stack, request).await;
    assert_eq!(
        running.status(),
        pb::CheckoutStatus::Running,
        "returned at the deadline"
    );

    // Crash: the driver stops where it is and the lease is not handed back.
    stack.engine.stop();
    let Stack {
        order,
        payment,
        inventory,
        shipping,
        orchestrator: crashed,
        ..
    } = stack;
    crashed.kill();
    let database = crashed.database_url.clone();
    let settings = settings_for(&order, &payment, &inventory, &shipping);
    let (replacement, engine) = orchestrator_on(Some(&database), settings).await;
    let stack = Stack {
        order,
        payment,
        inventory,
        shipping,
        orchestrator: replacement,
        engine,
    };
    let c = terminal(&stack, &running.checkout_id).await;
    assert_eq!(c.status(), pb::CheckoutStatus::Completed, "{c:?}");
    assert_invariants(&stack, &c).await;
    assert_eq!(stock(&stack, "MUG").await, (9, 1), "reserved once");
}

#[tokio::test]
async fn a_repeated_place_order_returns_the_same_checkout() {
    let stack = stack().await;
    let request = place("dup", "tok_visa", "FR", &[("MUG", 1)]);
    let attempts = (0..5).map(|_| place_order(&stack, request.clone()));
    let checkouts = join_all(attempts).await;
    let first = &checkouts[0];
    assert!(checkouts.iter().all(|c| c.checkout_id == first.checkout_id));
    assert_eq!(
        get(&stack, &first.checkout_id).await.status(),
        pb::CheckoutStatus::Completed
    );
    assert_eq!(stock(&stack, "MUG").await, (9, 1), "one saga ran");

    let mut other = request.clone();
    other.items[0].quantity = 2;
    let status = stack
        .checkout()
        .place_order(other.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);

    // A repeat whose cart cannot be priced now (inventory unavailable) still gets its
    // checkout (the key is found before the pricing error is answered), and another
    // request under the key is still ALREADY_EXISTS, not the pricing error.
    let down = "svc=inventory-svc,method=PriceCart,code=unavailable,times=100";
    let unpriced = stack
        .checkout()
        .place_order(with_fault(
            place("fresh", "tok_visa", "FR", &[("MUG", 1)]),
            down,
        ))
        .await
        .unwrap_err();
    assert_eq!(unpriced.code(), Code::Unavailable, "the fault applies");
    let again = stack
        .checkout()
        .place_order(with_fault(request, down))
        .await
        .unwrap()
        .into_inner()
        .checkout
        .unwrap();
    assert_eq!(again.checkout_id, first.checkout_id);
    let status = stack
        .checkout()
        .place_order(with_fault(other, down))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn two_replicas_on_one_database_each_drive_their_sagas_once() {
    let stack = stack().await;
    product(&stack, "BULK", 100, 1000).await;
    // Two more replicas on the stack's database, with patient attempt timeouts: the point
    // is that no saga is driven twice (one attempt per step), not how the stack copes
    // with a machine too slow for 400 ms attempts.
    let patient = || {
        let mut s = settings(&stack);
        s.resilience.attempt_timeout = Duration::from_secs(2);
        s.resilience.step_deadline = Duration::from_secs(6);
        s
    };
    let database = Some(stack.orchestrator.database_url.as_str());
    let (first, _first_engine) = orchestrator_on(database, patient()).await;
    let (second, _second_engine) = orchestrator_on(database, patient()).await;
    let replicas = [
        CheckoutServiceClient::new(first.channel.clone()),
        CheckoutServiceClient::new(second.channel.clone()),
    ];
    // Slow shipments keep sagas in flight while both replicas run recovery scans.
    let fault = "svc=shipping-svc,method=CreateShipment,before_ms=300";
    let calls = (0..20).map(|i| {
        let mut client = replicas[i % 2].clone();
        async move {
            client
                .place_order(with_fault(
                    place(&format!("r{i}"), "tok_visa", "FR", &[("BULK", 1)]),
                    fault,
                ))
                .await
                .unwrap()
                .into_inner()
                .checkout
                .unwrap()
        }
    });
    let checkouts = join_all(calls).await;
    for c in &checkouts {
        assert_eq!(c.status(), pb::CheckoutStatus::Completed, "{c:?}");
        // Driven once: each forward step ran exactly one attempt.
        assert!(c.steps.iter().all(|s| s.attempts == 1), "{c:?}");
        assert_invariants(&stack, c).await;
    }
    assert_eq!(stock(&stack, "BULK").await, (980, 20));
}

#[tokio::test]
async fn bad_input_is_refused_and_starts_nothing() {
    let stack = stack().await;
    let mut bad = place("", "", "France", &[("MUG", 0), ("MUG", 1)]);
    bad.customer_id.clear();
    let status = stack.checkout().place_order(bad).await.unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "idempotency_key",
            "customer_id",
            "items[0].quantity",
            "items[1].sku",
            "payment_token",
            "shipping_address.country"
        ]
    );
    let status = stack
        .checkout()
        .place_order(place("k", "tok_visa", "FR", &[("NOPE", 1), ("MUG", 1)]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("NOPE"), "{status:?}");

    // What a downstream would refuse is refused here, before anything is recorded: a
    // token the gateway does not know (not a declined card), a country that does not
    // exist, and a cart whose line or total is over the largest amount order-svc and
    // payment-svc accept (a valid price times a valid quantity can be).
    let status = stack
        .checkout()
        .place_order(place("k", "tok_amex_typo", "XX", &[("MUG", 1)]))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["payment_token", "shipping_address.country"]
    );
    product(&stack, "GOLD", 100_000_000, 10).await;
    let status = stack
        .checkout()
        .place_order(place("k", "tok_visa", "FR", &[("MUG", 1), ("GOLD", 2)]))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["items[1].quantity"]);
    let status = stack
        .checkout()
        .place_order(place("k", "tok_visa", "FR", &[("MUG", 1), ("GOLD", 1)]))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["items"]);
    let list = stack
        .checkout()
        .list_checkouts(pb::ListCheckoutsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.checkouts.is_empty(), "nothing started");
    assert_eq!(stock(&stack, "MUG").await, (10, 0));

    let status = stack
        .checkout()
        .get_checkout(pb::GetCheckoutRequest::default())
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["checkout_id"]);
    let status = stack
        .checkout()
        .get_checkout(pb::GetCheckoutRequest {
            checkout_id: uuid::Uuid::now_v7().to_string(),
            order_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn list_filters_by_status_and_watch_streams_to_the_end() {
    let stack = stack().await;
    let done = place_order(&stack, place("a", "tok_visa", "FR", &[("MUG", 1)])).await;
    let cancelled = place_order(
        &stack,
        place("b", "tok_chargeDeclined", "FR", &[("MUG", 1)]),
    )
    .await;
    let list = |status: pb::CheckoutStatus| {
        let mut client = stack.checkout();
        async move {
            client
                .list_checkouts(pb::ListCheckoutsRequest {
                    mode: pb::CoordinationMode::Unspecified.into(),
                    page_size: 10,
                    page_token: String::new(),
                    status: status.into(),
                    customer_id: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .checkouts
                .into_iter()
                .map(|c| c.checkout_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(pb::CheckoutStatus::Completed).await,
        [done.checkout_id.as_str()]
    );
    assert_eq!(
        list(pb::CheckoutStatus::Cancelled).await,
        [cancelled.checkout_id.as_str()]
    );
    assert_eq!(list(pb::CheckoutStatus::Unspecified).await.len(), 2);

    // A late watcher first gets what already happened, then the stream ends.
    let events: Vec<_> = stack
        .checkout()
        .watch_checkout(pb::WatchCheckoutRequest {
            checkout_id: cancelled.checkout_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    let events: Vec<_> = events.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        events.last().unwrap().status(),
        pb::CheckoutStatus::Cancelled
    );
    // The history as it happened, step by step, not the steps as they are now.
    let history = |name: &str| -> Vec<pb::StepStatus> {
        events
            .iter()
            .filter_map(|e| e.step.as_ref().filter(|s| s.name == name))
            .map(|s| s.status())
            .collect()
    };
    use pb::StepStatus::*;
    assert_eq!(
        history("create_order"),
        [Running, Succeeded, Compensating, Compensated]
    );
    assert_eq!(history("charge_payment"), [Running, Failed]);
    assert_eq!(history("reserve_stock"), [Skipped]);

    // A live watcher sees a running checkout through to its end.
    let fault = "svc=shipping-svc,method=CreateShipment,before_ms=350;\
                 svc=order-svc,method=ConfirmOrder,before_ms=350";
    let mut request = with_fault(place("c", "tok_visa", "FR", &[("MUG", 1)]), fault);
    request.set_timeout(Duration::from_millis(400));
    let running = place_order(&stack, request).await;
    let stream = stack
        .checkout()
        .watch_checkout(pb::WatchCheckoutRequest {
            checkout_id: running.checkout_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(20), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends when the checkout does");
    let last = events.last().unwrap().as_ref().unwrap();
    assert_eq!(last.status(), pb::CheckoutStatus::Completed);
}
