//! Dead letters made for real, for the tests of the operator's actions (the services'
//! EventAdminService, the front door's DeadLetterService, the console's page): an event
//! parked because the data its handler needs is gone, which a fix makes retryable, and
//! a message that is no event, which only a discard settles.
// Each test crate that includes this module uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use e2e::{
    Stack, Svc,
    clients::Clients,
    scenario::{place_briefly, place_in},
};
use platform::security::Principal;
use shop_proto::{
    checkout::v1::{self as pb, CoordinationMode},
    common::v1 as common,
    events::v1::{
        DeadLetter, ListDeadLettersRequest, event_admin_service_client::EventAdminServiceClient,
    },
    inventory::v1 as inventory,
};
use sqlx::Connection as _;
use tonic::transport::Channel;

/// `svc`'s EventAdminService, with the operator's certificate.
pub fn admin(stack: &Stack, svc: Svc) -> EventAdminServiceClient<Channel> {
    EventAdminServiceClient::new(stack.channel(svc))
}

/// The service's letters, newest first.
pub async fn letters(admin: &mut EventAdminServiceClient<Channel>) -> Vec<DeadLetter> {
    admin
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .expect("ListDeadLetters as the operator")
        .into_inner()
        .dead_letters
}

/// Waits (up to 30 s) for the service's first letter on `subject`.
pub async fn parked_on(admin: &mut EventAdminServiceClient<Channel>, subject: &str) -> DeadLetter {
    for _ in 0..300 {
        if let Some(letter) = letters(admin)
            .await
            .into_iter()
            .find(|l| l.subject == subject)
        {
            return letter;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing was parked on {subject}");
}

/// The subject of the event [`park_payment_captured`] parks.
pub const PAYMENT_CAPTURED: &str = "shop.events.payment.PaymentCaptured";

/// Places a choreographed checkout of one `sku` and has inventory-svc park its
/// `PaymentCaptured`: the checkout is held before inventory's turn (payment-svc down)
/// while the product is taken away, as a bad data migration would, so the event names a
/// sku inventory does not know, which no redelivery can fix. Returns the checkout (still
/// RUNNING) and the letter. `sku` must be in the catalog, priced 4,500.
pub async fn park_payment_captured(
    stack: &mut Stack,
    clients: &Clients,
    sku: &str,
) -> (pb::Checkout, DeadLetter) {
    stack.kill(Svc::Payment);
    let key = format!("poison-{}", uuid::Uuid::new_v4());
    let message = place_in(
        CoordinationMode::Choreographed,
        &key,
        "tok_visa",
        "FR",
        &[(sku, 1)],
    );
    let placed = place_briefly(clients, message).await;
    assert_eq!(placed.status(), pb::CheckoutStatus::Running, "{placed:?}");
    let mut db = sqlx::PgConnection::connect(stack.database_url(Svc::Inventory))
        .await
        .expect("inventory's database");
    for statement in [
        "DELETE FROM stock WHERE sku = $1",
        "DELETE FROM products WHERE sku = $1",
    ] {
        sqlx::query(statement)
            .bind(sku)
            .execute(&mut db)
            .await
            .expect("the product taken away");
    }
    stack.restart(Svc::Payment).await.expect("payment-svc back");
    let letter = parked_on(&mut admin(stack, Svc::Inventory), PAYMENT_CAPTURED).await;
    (placed, letter)
}

/// The fix for [`park_payment_captured`]: the product and `units` of stock back, as an
/// operator would restore them.
pub async fn restore(clients: &mut Clients, sku: &str, units: i64) {
    clients
        .inventory
        .upsert_product(inventory::UpsertProductRequest {
            sku: sku.into(),
            name: sku.into(),
            unit_price: Some(common::Money {
                amount_minor: 4_500,
                currency: "EUR".into(),
            }),
        })
        .await
        .expect("UpsertProduct as the operator");
    clients
        .inventory
        .set_stock(inventory::SetStockRequest {
            sku: sku.into(),
            quantity: units,
        })
        .await
        .expect("SetStock as the operator");
}

/// The subject [`publish_garbage`] publishes on.
pub const GARBAGE_SUBJECT: &str = "shop.events.order.OrderPlaced";

/// Publishes bytes that are no event on an order subject, from order-svc's certificate
/// (the broker takes order events from it alone): payment-svc, which consumes
/// `OrderPlaced`, and the orchestrator's tracker, which follows every order event, each
/// park it as unreadable.
pub async fn publish_garbage(stack: &Stack) {
    let order_svc = stack
        .pki()
        .expect("a TLS stack")
        .security(Principal::OrderSvc)
        .expect("order-svc's certificate");
    let client =
        platform::events::broker::client(&stack.nats_url(), "test", order_svc.tls().as_deref())
            .await
            .expect("connected to the broker");
    async_nats::jetstream::new(client)
        .publish(GARBAGE_SUBJECT, "not an envelope".into())
        .await
        .expect("published")
        .await
        .expect("stored by the stream");
}
