//! The broker's per-principal authorization (docs/SECURITY.md), tried from outside
//! against a stack's real nats-server and real services over mutual TLS: a client
//! certificate may publish only its own principal's subjects
//! (`shop.events.<producer>.>`) and read events only through its own durable consumers;
//! anything else the broker refuses, and a refused event changes nothing anywhere. The
//! console's and the load generator's certificates may do nothing with events at all.
//! The choreography still runs end to end under it, and a service whose event is
//! refused keeps it and says so.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use async_nats::{
    HeaderMap,
    jetstream::{self, consumer::pull, context::PublishError, publish::PublishAck},
};
use e2e::{
    Stack, StackOptions, Svc,
    clients::Clients,
    metrics,
    pki::Pki,
    scenario::{self, place_in, place_until_accepted, stack_with, stack_with_options},
};
use futures::StreamExt;
use platform::{
    events::{Event, STREAM, broker, refusals::Refusals},
    security::Principal,
};
use shop_proto::{
    checkout::v1::{self as pb, CoordinationMode},
    common::v1 as common,
    events::v1::{
        self as ev, ListDeadLettersRequest, envelope::Payload,
        event_admin_service_client::EventAdminServiceClient,
    },
    inventory::v1 as inventory,
    payment::v1 as payment,
};
use sqlx::Connection as _;
use uuid::Uuid;

fn pki(stack: &Stack) -> &Pki {
    stack.pki().expect("the stack runs over TLS")
}

/// A connection to the stack's broker with `principal`'s certificate, and what the
/// broker refused it.
struct Broker {
    client: async_nats::Client,
    js: jetstream::Context,
    refusals: Refusals,
}

impl Broker {
    async fn of(stack: &Stack, principal: Principal) -> Self {
        let security = pki(stack).security(principal).unwrap();
        let (client, refusals) = broker::connection(
            &stack.nats_url(),
            principal.name(),
            security.tls().as_deref(),
        )
        .await
        .unwrap_or_else(|e| panic!("{principal}'s certificate connects: {e:#}"));
        let mut js = jetstream::new(client.clone());
        // A refused publish gets no ack: this is how long it is waited for.
        js.set_timeout(Duration::from_secs(2));
        Self {
            client,
            js,
            refusals,
        }
    }

    /// Publishes `event` as a relay does; the stream's ack, or why there is none.
    async fn publish(&self, event: &Event) -> Result<PublishAck, PublishError> {
        self.publish_on(&event.subject(), event).await
    }

    /// [`Broker::publish`] on a subject of the caller's choosing.
    async fn publish_on(&self, subject: &str, event: &Event) -> Result<PublishAck, PublishError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.to_string().as_str());
        self.js
            .publish_with_headers(subject.to_owned(), headers, event.encode().into())
            .await?
            .await
    }

    /// How many messages the stream holds (every service may ask).
    async fn stored(&self) -> u64 {
        let stream = self.js.get_stream(STREAM).await.unwrap();
        stream.cached_info().state.messages
    }

    /// Waits (up to 5 s) for the broker's refusal of a subscription to `subject`.
    async fn subscription_refused(&self, subject: &str) -> bool {
        for _ in 0..50 {
            if self.refusals.subscription_refused(subject) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

fn eur(amount_minor: i64) -> Option<common::Money> {
    Some(common::Money {
        amount_minor,
        currency: "EUR".into(),
    })
}

/// A checkout of `quantity` MUGs for a new order, as the events carry it: well formed,
/// so that a service would act on it if it reached the stream.
fn checkout(quantity: i32) -> ev::Checkout {
    ev::Checkout {
        checkout_id: Uuid::now_v7().to_string(),
        order_id: Uuid::now_v7().to_string(),
        customer_id: "mallory".into(),
        lines: vec![ev::Line {
            sku: "MUG".into(),
            quantity,
            unit_price: eur(700),
            line_total: eur(700 * i64::from(quantity)),
        }],
        total: eur(700 * i64::from(quantity)),
        payment_token: "tok_visa".into(),
        shipping_address: Some(common::Address {
            name: "Mallory".into(),
            line1: "1 Rue de la Paix".into(),
            line2: String::new(),
            city: "Paris".into(),
            postal_code: "75002".into(),
            country: "FR".into(),
        }),
    }
}

/// An event from `producer` about a new checkout of `quantity` MUGs, its payload made
/// by `payload` around that checkout.
fn forged(producer: &str, quantity: i32, payload: impl FnOnce(ev::Checkout) -> Payload) -> Event {
    let checkout = checkout(quantity);
    let checkout_id = checkout.checkout_id.clone();
    Event::new(producer, &checkout_id, None, payload(checkout))
}

/// A forged `PaymentCaptured`: inventory-svc would reserve its MUGs.
fn captured(quantity: i32) -> Event {
    forged("payment", quantity, |checkout| {
        Payload::PaymentCaptured(ev::PaymentCaptured {
            checkout: Some(checkout),
            payment_id: Uuid::now_v7().to_string(),
        })
    })
}

/// A forged `OrderPlaced` (payment-svc would charge it), and its order id.
fn placed() -> (Event, String) {
    let event = forged("order", 1, |checkout| {
        Payload::OrderPlaced(ev::OrderPlaced {
            checkout: Some(checkout),
        })
    });
    let order_id = event.checkout().expect("a checkout").order_id.clone();
    (event, order_id)
}

async fn stock(clients: &mut Clients) -> inventory::GetStockResponse {
    clients
        .inventory
        .get_stock(inventory::GetStockRequest { sku: "MUG".into() })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn the_console_and_the_load_generator_may_neither_publish_nor_read_events() {
    let (stack, mut clients) = stack_with(&[("MUG", 700, 10)]).await;
    let payment_svc = Broker::of(&stack, Principal::PaymentSvc).await;
    let before = payment_svc.stored().await;

    let mut watchers = Vec::new();
    for principal in [Principal::Console, Principal::Loadgen] {
        // The certificate is the CA's, so it connects; it may then do nothing.
        let broker = Broker::of(&stack, principal).await;
        let watcher = broker.client.subscribe("shop.events.>").await.unwrap();
        broker.client.flush().await.unwrap();
        assert!(
            broker.subscription_refused("shop.events.>").await,
            "{principal}: the subscription to every event was not refused"
        );

        let forged = captured(3);
        let published = broker.publish(&forged).await;
        assert!(
            published.is_err(),
            "{principal} published a PaymentCaptured: {published:?}"
        );
        assert!(
            broker.refusals.take_publish(&forged.subject()),
            "{principal}: the broker did not say it refused {}",
            forged.subject()
        );
        watchers.push((principal, broker, watcher));
    }
    assert_eq!(
        payment_svc.stored().await,
        before,
        "a refused event reached the stream"
    );

    // The same event from payment-svc's certificate is taken, and inventory-svc acts on
    // it: what the refused ones would have done had they got through.
    let genuine = captured(3);
    payment_svc.publish(&genuine).await.unwrap();
    let mut reserved = false;
    for _ in 0..100 {
        reserved = stock(&mut clients).await.reserved > 0;
        if reserved {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reserved,
        "inventory-svc never reserved for payment-svc's PaymentCaptured"
    );
    // Time for any other PaymentCaptured in the stream to be handled too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = stock(&mut clients).await;
    assert_eq!(
        (after.available, after.reserved),
        (7, 3),
        "only payment-svc's event moved stock"
    );

    // Neither read any of it.
    for (principal, _broker, mut watcher) in watchers {
        let got = tokio::time::timeout(Duration::from_millis(500), watcher.next()).await;
        assert!(got.is_err(), "{principal} read an event: {got:?}");
    }
}

#[tokio::test]
async fn a_service_publishes_only_its_own_events_and_reads_only_its_own_consumers() {
    let (stack, mut clients) = stack_with(&[("MUG", 700, 10)]).await;
    let payment_svc = Broker::of(&stack, Principal::PaymentSvc).await;
    let before = payment_svc.stored().await;

    // Another producer's event: refused, not stored, not acted on (payment-svc itself
    // would charge a placed order).
    let (forged, order_id) = placed();
    let published = payment_svc.publish(&forged).await;
    assert!(
        published.is_err(),
        "payment-svc published an OrderPlaced: {published:?}"
    );
    assert!(
        payment_svc
            .refusals
            .take_publish("shop.events.order.OrderPlaced")
    );
    assert_eq!(
        payment_svc.stored().await,
        before,
        "the refused event was stored"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let payments = clients
        .payment
        .list_payments(payment::ListPaymentsRequest { order_id })
        .await
        .unwrap()
        .into_inner()
        .payments;
    assert!(
        payments.is_empty(),
        "the forged order was charged: {payments:?}"
    );

    // Its own producer's subjects: taken.
    let own = payment_svc
        .js
        .publish("shop.events.payment.BrokerAccessProbe", "probe".into())
        .await
        .unwrap()
        .await;
    assert!(own.is_ok(), "payment-svc's own subject: {own:?}");
    assert_eq!(payment_svc.stored().await, before + 1);

    // Reading: not every event, not another service's durable, and no durable of its own
    // that would follow every subject.
    let _watcher = payment_svc.client.subscribe("shop.events.>").await.unwrap();
    payment_svc.client.flush().await.unwrap();
    assert!(payment_svc.subscription_refused("shop.events.>").await);
    let theirs =
        format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.inventory-svc-payment-PaymentCaptured");
    let pulled = tokio::time::timeout(
        Duration::from_secs(2),
        payment_svc.client.request(theirs.clone(), "1".into()),
    )
    .await;
    assert!(
        !matches!(pulled, Ok(Ok(_))),
        "payment-svc pulled from inventory-svc's consumer: {pulled:?}"
    );
    assert!(payment_svc.refusals.take_publish(&theirs));
    let stream = payment_svc.js.get_stream(STREAM).await.unwrap();
    let everything = stream
        .create_consumer(pull::Config {
            durable_name: Some("payment-svc-everything".into()),
            filter_subject: "shop.events.>".into(),
            ..Default::default()
        })
        .await;
    assert!(
        everything.is_err(),
        "payment-svc made a consumer of every event"
    );

    // The front door announces checkouts, nothing else.
    let front = Broker::of(&stack, Principal::Orchestrator).await;
    for subject in [
        "shop.events.checkout.CheckoutCancelled",
        "shop.events.payment.PaymentCaptured",
    ] {
        let published = front
            .js
            .publish(subject, "forged".into())
            .await
            .unwrap()
            .await;
        assert!(published.is_err(), "the orchestrator published {subject}");
        assert!(front.refusals.take_publish(subject), "{subject}");
    }
    assert_eq!(payment_svc.stored().await, before + 1);
}

#[tokio::test]
async fn a_certificate_of_no_principal_is_not_let_in() {
    let (stack, _clients) = stack_with(&[]).await;
    let pki = pki(&stack);
    let dir = stack.log_dir.join("mallory");
    std::fs::create_dir_all(&dir).unwrap();
    // Signed by the shop's CA, for a name that is no principal's.
    let (cert, key) = pki.issue(&["mallory", "localhost"]).unwrap();
    std::fs::write(dir.join("mallory.pem"), cert).unwrap();
    std::fs::write(dir.join("mallory.key"), key).unwrap();
    let security = platform::security::SecurityArgs {
        dev_insecure: false,
        tls_cert_file: Some(dir.join("mallory.pem")),
        tls_key_file: Some(dir.join("mallory.key")),
        tls_ca_file: Some(pki.ca()),
    }
    .security()
    .unwrap();
    let refused = broker::client(&stack.nats_url(), "mallory", security.tls().as_deref()).await;
    let error = refused.expect_err("a certificate of no principal connected");
    assert!(
        format!("{error:#}").contains("authorization violation"),
        "{error:#}"
    );
}

#[tokio::test]
async fn a_choreographed_checkout_completes_and_the_broker_refuses_nothing_on_the_way() {
    let (stack, clients) = stack_with(&[("MUG", 700, 10)]).await;
    let message = place_in(
        CoordinationMode::Choreographed,
        "authorized",
        "tok_visa",
        "FR",
        &[("MUG", 2)],
    );
    let checkout = place_until_accepted(&clients, message, None).await;
    assert_eq!(
        checkout.status(),
        pb::CheckoutStatus::Completed,
        "{checkout:?}"
    );
    assert_eq!(checkout.mode(), CoordinationMode::Choreographed);
    // Every service, and the tracker, did all it does through the broker without
    // being refused anything: the permissions are enough, not just restrictive.
    let log = std::fs::read_to_string(stack.log_dir.join("nats-server.log")).unwrap();
    assert!(
        !log.contains("Violation"),
        "the broker refused the shop's own services:\n{log}"
    );
    for svc in Svc::ALL {
        let log =
            std::fs::read_to_string(stack.log_dir.join(format!("{}.log", svc.binary()))).unwrap();
        assert!(
            !log.contains("the broker refused"),
            "{}: {log}",
            svc.binary()
        );
    }
}

#[tokio::test]
async fn an_event_the_broker_refuses_stays_in_the_outbox_and_is_reported() {
    let options = StackOptions {
        metrics: true,
        ..scenario::options()
    };
    let (stack, mut clients) = stack_with_options(options, &[("MUG", 700, 10)]).await;
    // An outbox row under another producer's subject, as a bug or a tampered row would
    // make one: payment-svc's relay offers it, and the broker refuses.
    let (forged, _) = placed();
    let mut db = sqlx::PgConnection::connect(stack.database_url(Svc::Payment))
        .await
        .unwrap();
    platform::events::outbox::enqueue(&mut db, &forged)
        .await
        .unwrap();

    let metrics_addr = stack.metrics_addr(Svc::Payment).unwrap();
    let labels = [
        "producer=\"payment\"",
        "subject=\"shop.events.order.OrderPlaced\"",
    ];
    let mut counted = None;
    for _ in 0..300 {
        let text = metrics::scrape(metrics_addr).await.unwrap();
        counted = metrics::sample(&text, "outbox_publish_refused_total", &labels);
        if counted.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        counted.is_some_and(|n| n >= 1.0),
        "payment-svc did not count the refused event"
    );
    let log = std::fs::read_to_string(stack.log_dir.join("payment-svc.log")).unwrap();
    let said = log.lines().find(|line| {
        line.contains("ERROR")
            && line.contains("the broker refused to publish")
            && line.contains("shop.events.order.OrderPlaced")
    });
    assert!(said.is_some(), "no error naming the subject:\n{log}");

    // The row stays; the event reached no one.
    let unsent: bool = sqlx::query_scalar("SELECT sent_at IS NULL FROM outbox WHERE event_id = $1")
        .bind(forged.id)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(unsent, "the refused event was marked sent");

    // It does not hold back the service's own events: a choreographed checkout, which
    // needs payment-svc's PaymentCaptured, still completes.
    let message = place_in(
        CoordinationMode::Choreographed,
        "behind-a-refused-event",
        "tok_visa",
        "FR",
        &[("MUG", 1)],
    );
    let placed = scenario::place_briefly(&clients, message).await;
    let get = pb::GetCheckoutRequest {
        checkout_id: placed.checkout_id.clone(),
        order_id: String::new(),
    };
    let mut status = pb::CheckoutStatus::Unspecified;
    for _ in 0..900 {
        let checkout = clients
            .checkout
            .get_checkout(get.clone())
            .await
            .unwrap()
            .into_inner()
            .checkout
            .unwrap();
        status = checkout.status();
        if status == pb::CheckoutStatus::Completed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, pb::CheckoutStatus::Completed);
}

/// The broker lets payment-svc publish anything under `shop.events.payment.>`; the
/// consumers then take from that subject only the types payment-svc owns. An
/// `OrderConfirmed` sent there (the tracker would mark a checkout COMPLETED) and a
/// `ShipmentRejected` dressed as `PaymentCaptured` (inventory-svc would release stock)
/// are parked with a reason naming the owner, not applied.
#[tokio::test]
async fn a_service_cannot_pass_off_another_services_event_under_its_own_name() {
    let (stack, _clients) = stack_with(&[("MUG", 700, 10)]).await;
    let payment_svc = Broker::of(&stack, Principal::PaymentSvc).await;
    let confirmed = forged("order", 1, |checkout| {
        Payload::OrderConfirmed(ev::OrderConfirmed {
            checkout: Some(checkout),
            ..Default::default()
        })
    });
    let rejected = forged("payment", 1, |checkout| {
        Payload::ShipmentRejected(ev::ShipmentRejected {
            checkout: Some(checkout),
            ..Default::default()
        })
    });
    for (event, subject) in [
        (&confirmed, "shop.events.payment.OrderConfirmed"),
        (&rejected, "shop.events.payment.PaymentCaptured"),
    ] {
        let stored = payment_svc.publish_on(subject, event).await;
        assert!(
            stored.is_ok(),
            "payment-svc's own subject {subject}: {stored:?}"
        );
    }
    for (svc, subject, owner) in [
        (
            Svc::Orchestrator,
            "shop.events.payment.OrderConfirmed",
            "order",
        ),
        (
            Svc::Inventory,
            "shop.events.payment.PaymentCaptured",
            "shipping",
        ),
    ] {
        let mut admin = EventAdminServiceClient::new(stack.channel(svc));
        let mut parked = None;
        for _ in 0..100 {
            let letters = admin
                .list_dead_letters(ListDeadLettersRequest::default())
                .await
                .unwrap()
                .into_inner()
                .dead_letters;
            parked = letters.into_iter().find(|letter| letter.subject == subject);
            if parked.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let letter = parked.unwrap_or_else(|| panic!("{svc:?} never parked {subject}"));
        assert!(
            letter.reason.contains(&format!("only `{owner}` publishes")),
            "{svc:?}: {letter:?}"
        );
    }
}
