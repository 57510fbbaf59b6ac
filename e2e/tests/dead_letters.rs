//! The operator's dead-letter actions, across real processes and the real broker: an
//! event parked because the data its handler needs is gone is retried once the data is
//! repaired, handled once, and its checkout completes; a message that is no event is
//! discarded with a reason on record. Each action settles a letter once: repeating it
//! changes nothing, and the opposite action is refused.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use e2e::{
    Stack, StackOptions, Svc,
    scenario::{
        all_terminal, assert_invariants, get_checkout, place_briefly, place_in, stack_with_options,
    },
};
use platform::security::Principal;
use shop_proto::{
    checkout::v1::{self as pb, CoordinationMode},
    common::v1 as common,
    events::v1::{
        DeadLetter, DeadLetterState, DiscardDeadLetterRequest, ListDeadLettersRequest,
        RetryDeadLetterRequest, event_admin_service_client::EventAdminServiceClient,
    },
    inventory::v1 as inventory,
    reason,
};
use sqlx::Connection as _;
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

fn admin(stack: &Stack, svc: Svc) -> EventAdminServiceClient<Channel> {
    EventAdminServiceClient::new(stack.channel(svc))
}

/// The service's letters, newest first.
async fn letters(admin: &mut EventAdminServiceClient<Channel>) -> Vec<DeadLetter> {
    admin
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .dead_letters
}

/// Waits for the service's first letter on `subject`.
async fn parked_on(admin: &mut EventAdminServiceClient<Channel>, subject: &str) -> DeadLetter {
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

async fn retry(
    admin: &mut EventAdminServiceClient<Channel>,
    id: i64,
) -> Result<DeadLetter, Status> {
    Ok(admin
        .retry_dead_letter(RetryDeadLetterRequest { id })
        .await?
        .into_inner()
        .dead_letter
        .unwrap())
}

async fn discard(
    admin: &mut EventAdminServiceClient<Channel>,
    id: i64,
    reason: &str,
) -> Result<DeadLetter, Status> {
    Ok(admin
        .discard_dead_letter(DiscardDeadLetterRequest {
            id,
            reason: reason.into(),
        })
        .await?
        .into_inner()
        .dead_letter
        .unwrap())
}

fn refused_because(status: &Status, code: Code, why: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(info.map(|i| i.reason).as_deref(), Some(why), "{status:?}");
}

#[tokio::test]
async fn a_parked_event_retried_after_the_fix_is_handled_once_and_its_checkout_completes() {
    let (mut stack, mut clients) =
        stack_with_options(StackOptions::default(), &[("LAMP", 4_500, 5)]).await;
    // Hold the checkout before inventory's turn, then take away the product it reserves,
    // as a bad data migration would: PaymentCaptured then names a sku inventory does not
    // know, which no redelivery can fix, so inventory-svc parks it.
    stack.kill(Svc::Payment);
    let message = place_in(
        CoordinationMode::Choreographed,
        "lamp",
        "tok_visa",
        "FR",
        &[("LAMP", 1)],
    );
    let placed = place_briefly(&clients, message).await;
    assert_eq!(placed.status(), pb::CheckoutStatus::Running);
    let mut db = sqlx::PgConnection::connect(stack.database_url(Svc::Inventory))
        .await
        .unwrap();
    sqlx::query("DELETE FROM stock WHERE sku = 'LAMP'")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM products WHERE sku = 'LAMP'")
        .execute(&mut db)
        .await
        .unwrap();
    stack.restart(Svc::Payment).await.unwrap();

    let mut inventory_admin = admin(&stack, Svc::Inventory);
    let letter = parked_on(&mut inventory_admin, "shop.events.payment.PaymentCaptured").await;
    assert_eq!(letter.state(), DeadLetterState::Parked);
    assert!(letter.reason.contains("LAMP"), "{letter:?}");
    assert!(letter.settle_time.is_none() && letter.settled_by.is_empty());
    let stuck = get_checkout(&mut clients, &placed.checkout_id).await;
    assert_eq!(stuck.status(), pb::CheckoutStatus::Running);

    // Before the fix the handler refuses it again, and nothing changes.
    let early = retry(&mut inventory_admin, letter.id).await.unwrap_err();
    refused_because(
        &early,
        Code::FailedPrecondition,
        reason::DEAD_LETTER_STILL_FAILING,
    );
    assert!(early.message().contains("LAMP"), "{early:?}");
    let unchanged = letters(&mut inventory_admin).await;
    assert_eq!(
        unchanged.first().map(DeadLetter::state),
        Some(DeadLetterState::Parked)
    );

    // The fix: the product and its stock back, as an operator would restore them.
    clients
        .inventory
        .upsert_product(inventory::UpsertProductRequest {
            sku: "LAMP".into(),
            name: "LAMP".into(),
            unit_price: Some(common::Money {
                amount_minor: 4_500,
                currency: "EUR".into(),
            }),
        })
        .await
        .unwrap();
    clients
        .inventory
        .set_stock(inventory::SetStockRequest {
            sku: "LAMP".into(),
            quantity: 5,
        })
        .await
        .unwrap();

    let retried = retry(&mut inventory_admin, letter.id).await.unwrap();
    assert_eq!(retried.state(), DeadLetterState::Retried);
    assert_eq!(retried.settled_by, Principal::Operator.name());
    assert_eq!(retried.settle_note, "handled");
    assert!(retried.settle_time.is_some());

    let ended = all_terminal(&mut clients).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(
        ended[0].status(),
        pb::CheckoutStatus::Completed,
        "{ended:?}"
    );

    // A second retry answers the letter as it is and handles nothing again.
    let again = retry(&mut inventory_admin, letter.id).await.unwrap();
    assert_eq!(again, retried);
    let stock = clients
        .inventory
        .get_stock(inventory::GetStockRequest { sku: "LAMP".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stock.reserved, 1, "reserved once: {stock:?}");
    // What a retry handled cannot be discarded.
    let late = discard(&mut inventory_admin, letter.id, "too late")
        .await
        .unwrap_err();
    refused_because(&late, Code::FailedPrecondition, reason::DEAD_LETTER_RETRIED);
    assert_invariants(&mut clients, &ended, &[("LAMP", 5)]).await;
}

#[tokio::test]
async fn a_message_that_is_no_event_is_discarded_with_a_reason_on_record() {
    let (stack, _clients) = stack_with_options(StackOptions::default(), &[]).await;
    // The broker takes order events from order-svc's certificate only.
    let order_svc = stack.pki().unwrap().security(Principal::OrderSvc).unwrap();
    let client =
        platform::events::broker::client(&stack.nats_url(), "test", order_svc.tls().as_deref())
            .await
            .unwrap();
    async_nats::jetstream::new(client)
        .publish("shop.events.order.OrderPlaced", "not an envelope".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut payment_admin = admin(&stack, Svc::Payment);
    let letter = parked_on(&mut payment_admin, "shop.events.order.OrderPlaced").await;
    assert_eq!(letter.payload, b"not an envelope");

    let unreadable = retry(&mut payment_admin, letter.id).await.unwrap_err();
    refused_because(
        &unreadable,
        Code::FailedPrecondition,
        reason::DEAD_LETTER_UNREADABLE,
    );

    for (id, why, field) in [
        (letter.id, "", "reason"),
        (letter.id, &*"x".repeat(501), "reason"),
        (0, "garbage", "id"),
    ] {
        let bad = discard(&mut payment_admin, id, why).await.unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
        let violations = bad.get_error_details().bad_request().cloned().unwrap();
        assert_eq!(violations.field_violations[0].field, field, "{bad:?}");
    }
    let missing = discard(&mut payment_admin, letter.id + 1_000, "garbage")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    assert_eq!(
        letters(&mut payment_admin).await[0].state(),
        DeadLetterState::Parked,
        "refused requests change nothing"
    );

    let discarded = discard(&mut payment_admin, letter.id, "garbage from a test client")
        .await
        .unwrap();
    assert_eq!(discarded.state(), DeadLetterState::Discarded);
    assert_eq!(discarded.settle_note, "garbage from a test client");
    assert_eq!(discarded.settled_by, Principal::Operator.name());
    let twice = discard(&mut payment_admin, letter.id, "another reason")
        .await
        .unwrap();
    assert_eq!(twice, discarded, "the first decision stands");
    let listed = letters(&mut payment_admin).await;
    assert_eq!(listed[0], discarded);
    let after = retry(&mut payment_admin, letter.id).await.unwrap_err();
    refused_because(
        &after,
        Code::FailedPrecondition,
        reason::DEAD_LETTER_DISCARDED,
    );

    // Settling a letter acts on an event: nobody but an operator may.
    let console = stack.pki().unwrap().security(Principal::Console).unwrap();
    let mut as_console = EventAdminServiceClient::new(stack.channel_as(Svc::Payment, &console));
    let denied = as_console
        .discard_dead_letter(DiscardDeadLetterRequest {
            id: letter.id,
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
}
