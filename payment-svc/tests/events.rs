//! payment-svc's part in the choreographed checkout: events go in on the broker, and what
//! a user checks comes out (the events it emits, payments through the gRPC API, parked
//! messages through EventAdminService). A real Postgres database and a NATS server per
//! test.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use platform::events::Event;
use platform::testing::{WithBroker, events_of, publish, publish_again, wait_settled};
use shop_proto::common::v1 as common;
use shop_proto::events::v1::{self as ev, DeadLetter, envelope::Payload};
use shop_proto::payment::v1::{self as pb, payment_service_client::PaymentServiceClient};
use tonic::transport::Channel;

/// Longest a test waits for the service to react.
const WAIT: Duration = Duration::from_secs(20);
/// What payment-svc emits.
const PAYMENT_EVENTS: &str = "shop.events.payment.>";

/// payment-svc with its events on a broker of its own.
struct Shop {
    payments: PaymentServiceClient<Channel>,
    events: WithBroker,
}

async fn start() -> Shop {
    let events = WithBroker::spawn(payment_svc::NAME, payment_svc::build).await;
    Shop {
        payments: PaymentServiceClient::new(events.channel()),
        events,
    }
}

impl Shop {
    /// What payment-svc emitted for checkout `correlation_id`, once `count` events arrived.
    async fn emitted(&self, correlation_id: &str, count: usize) -> Vec<Event> {
        events_of(&self.events.js, PAYMENT_EVENTS, correlation_id, count, WAIT).await
    }
}

fn eur(amount_minor: i64) -> Option<common::Money> {
    Some(common::Money {
        amount_minor,
        currency: "EUR".into(),
    })
}

/// A checkout of 29.00 EUR paid with `token`, as OrderPlaced carries it.
fn checkout(token: &str) -> ev::Checkout {
    ev::Checkout {
        checkout_id: uuid::Uuid::now_v7().to_string(),
        order_id: uuid::Uuid::now_v7().to_string(),
        customer_id: "ada".into(),
        lines: vec![ev::Line {
            sku: "MUG".into(),
            quantity: 2,
            unit_price: eur(1450),
            line_total: eur(2900),
        }],
        total: eur(2900),
        payment_token: token.into(),
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

fn placed(checkout: &ev::Checkout) -> Event {
    let payload = Payload::OrderPlaced(ev::OrderPlaced {
        checkout: Some(checkout.clone()),
    });
    Event::new("order", &checkout.checkout_id, None, payload)
}

fn stock_rejected(checkout: &ev::Checkout) -> Event {
    let payload = Payload::StockRejected(ev::StockRejected {
        checkout: Some(checkout.clone()),
        failure_reason: "out_of_stock".into(),
    });
    Event::new("inventory", &checkout.checkout_id, None, payload)
}

/// Places the order and returns the id of the payment PaymentCaptured names.
async fn capture(shop: &Shop, checkout: &ev::Checkout) -> String {
    publish(&shop.events.js, &placed(checkout)).await;
    let emitted = shop.emitted(&checkout.checkout_id, 1).await;
    match &emitted[0].payload {
        Payload::PaymentCaptured(captured) => captured.payment_id.clone(),
        other => panic!("PaymentCaptured expected, got {other:?}"),
    }
}

/// The order's payments as ListPayments shows them: (id, status, amount, decline reason).
async fn payments(shop: &Shop, order_id: &str) -> Vec<(String, pb::PaymentStatus, i64, String)> {
    shop.payments
        .clone()
        .list_payments(pb::ListPaymentsRequest {
            order_id: order_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .payments
        .into_iter()
        .map(|p| {
            let (status, amount) = (p.status(), p.amount.map_or(0, |a| a.amount_minor));
            (p.payment_id, status, amount, p.decline_reason)
        })
        .collect()
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

#[tokio::test]
async fn a_placed_order_is_charged_and_the_capture_announced() {
    let shop = start().await;
    let checkout = checkout("tok_visa");
    let order_placed = placed(&checkout);
    publish(&shop.events.js, &order_placed).await;

    let emitted = shop.emitted(&checkout.checkout_id, 1).await;
    assert_eq!(emitted[0].producer, "payment");
    assert_eq!(
        emitted[0].envelope.causation_id,
        order_placed.id.to_string()
    );
    let Payload::PaymentCaptured(captured) = &emitted[0].payload else {
        panic!("PaymentCaptured expected, got {emitted:?}");
    };
    assert_eq!(captured.checkout.as_ref(), Some(&checkout));
    assert_eq!(
        payments(&shop, &checkout.order_id).await,
        [(
            captured.payment_id.clone(),
            pb::PaymentStatus::Captured,
            2900,
            String::new()
        )]
    );
}

#[tokio::test]
async fn a_declined_token_is_announced_with_the_reason_it_is_recorded_with() {
    let shop = start().await;
    for (token, reason) in [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
    ] {
        let checkout = checkout(token);
        publish(&shop.events.js, &placed(&checkout)).await;
        let emitted = shop.emitted(&checkout.checkout_id, 1).await;
        let Payload::PaymentDeclined(declined) = &emitted[0].payload else {
            panic!("PaymentDeclined expected for {token}, got {emitted:?}");
        };
        assert_eq!(declined.failure_reason, reason);
        assert_eq!(declined.checkout.as_ref(), Some(&checkout));
        assert_eq!(
            payments(&shop, &checkout.order_id).await,
            [(
                declined.payment_id.clone(),
                pb::PaymentStatus::Declined,
                2900,
                reason.to_owned()
            )]
        );
    }
}

#[tokio::test]
async fn rejected_or_released_stock_refunds_the_capture() {
    let shop = start().await;
    let rejected = checkout("tok_visa");
    let released = checkout("tok_mastercard");
    let released_event = Event::new(
        "inventory",
        &released.checkout_id,
        None,
        Payload::StockReleased(ev::StockReleased {
            checkout: Some(released.clone()),
            failure_reason: "undeliverable_address".into(),
        }),
    );
    for (checkout, compensation, reason) in [
        (&rejected, stock_rejected(&rejected), "out_of_stock"),
        (&released, released_event, "undeliverable_address"),
    ] {
        let payment_id = capture(&shop, checkout).await;
        publish(&shop.events.js, &compensation).await;
        let emitted = shop.emitted(&checkout.checkout_id, 2).await;
        assert_eq!(
            emitted[1].payload,
            Payload::PaymentRefunded(ev::PaymentRefunded {
                checkout: Some(checkout.clone()),
                payment_id: payment_id.clone(),
                failure_reason: reason.into(),
            })
        );
        assert_eq!(
            payments(&shop, &checkout.order_id).await,
            [(payment_id, pb::PaymentStatus::Refunded, 2900, String::new())]
        );
    }
}

#[tokio::test]
async fn an_order_placed_delivered_again_is_charged_once() {
    let shop = start().await;
    let checkout = checkout("tok_visa");
    let order_placed = placed(&checkout);
    publish(&shop.events.js, &order_placed).await;
    shop.emitted(&checkout.checkout_id, 1).await;

    // The same event stored again under another Nats-Msg-Id, so the stream's duplicate
    // window lets it through: only the consumer's inbox stands between it and a charge.
    let again = publish_again(&shop.events.js, &order_placed).await;
    wait_settled(
        &shop.events.js,
        payment_svc::NAME,
        &order_placed.subject(),
        again,
    )
    .await;

    // Anything the repeat emitted would be relayed before what the next event emits.
    publish(&shop.events.js, &stock_rejected(&checkout)).await;
    let emitted = shop.emitted(&checkout.checkout_id, 2).await;
    assert_eq!(kinds(&emitted), ["PaymentCaptured", "PaymentRefunded"]);
    assert_eq!(payments(&shop, &checkout.order_id).await.len(), 1);
}

#[tokio::test]
async fn events_that_would_move_money_on_a_guess_are_parked() {
    let shop = start().await;
    let never_paid = checkout("tok_visa");
    // The front door refuses such a token; an event carrying one is not a decline.
    let unknown_token = checkout("tok_amex_typo");
    // Paid through the API already: the event may not capture a second time.
    let paid = checkout("tok_visa");
    shop.payments
        .clone()
        .charge(pb::ChargeRequest {
            idempotency_key: "paid-by-rpc".into(),
            order_id: paid.order_id.clone(),
            amount: eur(2900),
            payment_token: "tok_visa".into(),
        })
        .await
        .unwrap();
    let poison = [
        (
            stock_rejected(&never_paid),
            "has no captured payment to refund",
        ),
        (placed(&paid), "already has a captured payment"),
        (placed(&unknown_token), "checkout.payment_token"),
    ];
    for (event, _) in &poison {
        publish(&shop.events.js, event).await;
    }

    let parked = shop.events.dead_letters(3, WAIT).await;
    for (event, reason) in &poison {
        let letter: &DeadLetter = parked
            .iter()
            .find(|l| l.event_id == event.id.to_string())
            .unwrap_or_else(|| panic!("{} not parked: {parked:?}", event.kind()));
        assert_eq!(letter.consumer, "payment-svc");
        assert_eq!(letter.subject, event.subject());
        assert!(letter.reason.contains(reason), "{letter:?}");
    }
    assert!(payments(&shop, &never_paid.order_id).await.is_empty());
    assert!(payments(&shop, &unknown_token.order_id).await.is_empty());
    assert_eq!(payments(&shop, &paid.order_id).await.len(), 1);
}
