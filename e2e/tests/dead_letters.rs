//! The operator's dead-letter actions, across real processes and the real broker: an
//! event parked because the data its handler needs is gone is retried once the data is
//! repaired, handled once, and its checkout completes; a message that is no event is
//! discarded with a reason on record. Each action settles a letter once: repeating it
//! changes nothing, and the opposite action is refused. The same actions through the
//! front door (`shop.operations.v1.DeadLetterService`), for an operator's token: relayed
//! to the service that parked the letter with the services' answers unchanged, refused
//! without a token, for a customer's, and for a request that names no service or letter.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

mod poison;

use e2e::{
    Stack, StackOptions, Svc,
    scenario::{all_terminal, assert_invariants, get_checkout, stack_with_options},
};
use platform::security::{Principal, connect::FrontDoor};
use poison::{
    GARBAGE_SUBJECT, PAYMENT_CAPTURED, admin, letters, park_payment_captured, parked_on,
    publish_garbage, restore,
};
use shop_proto::{
    checkout::v1 as pb,
    events::v1::{
        DeadLetter, DeadLetterState, DiscardDeadLetterRequest, RetryDeadLetterRequest,
        event_admin_service_client::EventAdminServiceClient,
    },
    inventory::v1 as inventory,
    operations::v1::{
        self as ops, ShopService, dead_letter_service_client::DeadLetterServiceClient,
    },
    reason,
};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

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
    let (placed, letter) = park_payment_captured(&mut stack, &clients, "LAMP").await;
    let mut inventory_admin = admin(&stack, Svc::Inventory);
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
    restore(&mut clients, "LAMP", 5).await;

    // Who settles it is the certificate's principal: only the orchestrator's relay may name
    // a person it acts for, so the same claim from the operator's certificate is ignored.
    let mut claimed = tonic::Request::new(RetryDeadLetterRequest { id: letter.id });
    claimed.metadata_mut().insert(
        platform::events::admin::ON_BEHALF_OF,
        "mallory".parse().unwrap(),
    );
    let retried = inventory_admin
        .retry_dead_letter(claimed)
        .await
        .unwrap()
        .into_inner()
        .dead_letter
        .unwrap();
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
    publish_garbage(&stack).await;
    let mut payment_admin = admin(&stack, Svc::Payment);
    let letter = parked_on(&mut payment_admin, GARBAGE_SUBJECT).await;
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

/// The front door's DeadLetterService, sending a token for `subject` (an operator if
/// asked), over the operator's certificate: the token decides, not the certificate.
fn front_door(stack: &Stack, subject: &str, operator: bool) -> DeadLetterServiceClient<FrontDoor> {
    DeadLetterServiceClient::with_interceptor(
        stack.channel(Svc::Orchestrator),
        stack.token(subject, operator).unwrap(),
    )
}

async fn list_at(
    client: &mut DeadLetterServiceClient<FrontDoor>,
    service: ShopService,
) -> Result<Vec<DeadLetter>, Status> {
    Ok(client
        .list_dead_letters(ops::ListDeadLettersRequest {
            service: service.into(),
            ..ops::ListDeadLettersRequest::default()
        })
        .await?
        .into_inner()
        .dead_letters)
}

async fn retry_at(
    client: &mut DeadLetterServiceClient<FrontDoor>,
    service: ShopService,
    id: i64,
) -> Result<DeadLetter, Status> {
    Ok(client
        .retry_dead_letter(ops::RetryDeadLetterRequest {
            service: service.into(),
            id,
        })
        .await?
        .into_inner()
        .dead_letter
        .unwrap())
}

async fn discard_at(
    client: &mut DeadLetterServiceClient<FrontDoor>,
    service: ShopService,
    id: i64,
    reason: &str,
) -> Result<DeadLetter, Status> {
    Ok(client
        .discard_dead_letter(ops::DiscardDeadLetterRequest {
            service: service.into(),
            id,
            reason: reason.into(),
        })
        .await?
        .into_inner()
        .dead_letter
        .unwrap())
}

/// The fields a refusal's BadRequest names, in order.
fn fields_of(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the orchestrator's log has a line with every one of `needles`.
fn logged(stack: &Stack, needles: &[&str]) -> bool {
    let log = std::fs::read_to_string(stack.log_dir.join("orchestrator.log")).unwrap();
    log.lines()
        .any(|line| needles.iter().all(|needle| line.contains(needle)))
}

#[tokio::test]
async fn an_operators_token_settles_a_services_dead_letter_through_the_front_door() {
    let (mut stack, mut clients) =
        stack_with_options(StackOptions::default(), &[("LAMP", 4_500, 5)]).await;
    let (placed, letter) = park_payment_captured(&mut stack, &clients, "LAMP").await;
    assert_eq!(letter.subject, PAYMENT_CAPTURED);
    let operator = "ops-dana";
    let mut ops = front_door(&stack, operator, true);

    // The front door lists what inventory-svc holds, as inventory-svc lists it.
    let listed = list_at(&mut ops, ShopService::Inventory).await.unwrap();
    assert_eq!(listed, letters(&mut admin(&stack, Svc::Inventory)).await);
    assert!(listed.contains(&letter), "{listed:?}");
    for other in [ShopService::Order, ShopService::Shipping] {
        assert_eq!(list_at(&mut ops, other).await.unwrap(), [], "{other:?}");
    }

    // Nobody without an operator's token, whatever certificate carries the call.
    let mut tokenless = DeadLetterServiceClient::new(stack.channel(Svc::Orchestrator));
    let mut customer = front_door(&stack, "alice", false);
    let unauthenticated = tokenless
        .retry_dead_letter(ops::RetryDeadLetterRequest {
            service: ShopService::Inventory.into(),
            id: letter.id,
        })
        .await
        .unwrap_err();
    assert_eq!(
        unauthenticated.code(),
        Code::Unauthenticated,
        "{unauthenticated:?}"
    );
    let unauthenticated = tokenless
        .list_dead_letters(ops::ListDeadLettersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        unauthenticated.code(),
        Code::Unauthenticated,
        "{unauthenticated:?}"
    );
    for denied in [
        list_at(&mut customer, ShopService::Inventory)
            .await
            .unwrap_err(),
        retry_at(&mut customer, ShopService::Inventory, letter.id)
            .await
            .unwrap_err(),
        discard_at(&mut customer, ShopService::Inventory, letter.id, "mine")
            .await
            .unwrap_err(),
    ] {
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    }

    // Requests that name no service or no letter, every bad field named at once.
    let bad = retry_at(&mut ops, ShopService::Unspecified, 0)
        .await
        .unwrap_err();
    assert_eq!(fields_of(&bad), ["id", "service"]);
    let bad = ops
        .retry_dead_letter(ops::RetryDeadLetterRequest {
            service: 42,
            id: letter.id,
        })
        .await
        .unwrap_err();
    assert_eq!(fields_of(&bad), ["service"]);
    let bad = discard_at(&mut ops, ShopService::Inventory, letter.id, "  ")
        .await
        .unwrap_err();
    assert_eq!(fields_of(&bad), ["reason"]);
    let bad = ops
        .list_dead_letters(ops::ListDeadLettersRequest {
            service: ShopService::Inventory.into(),
            page_size: 101,
            page_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(fields_of(&bad), ["page_size"]);
    // The service's own refusal of a page token, passed on.
    let bad = ops
        .list_dead_letters(ops::ListDeadLettersRequest {
            service: ShopService::Inventory.into(),
            page_size: 0,
            page_token: "not-a-token".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(fields_of(&bad), ["page_token"]);

    // The service's refusals pass through unchanged: code, reason, message, details.
    let early = retry_at(&mut ops, ShopService::Inventory, letter.id)
        .await
        .unwrap_err();
    refused_because(
        &early,
        Code::FailedPrecondition,
        reason::DEAD_LETTER_STILL_FAILING,
    );
    assert!(early.message().contains("LAMP"), "{early:?}");
    let missing = retry_at(&mut ops, ShopService::Inventory, letter.id + 1_000)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let resource = missing
        .get_error_details()
        .resource_info()
        .cloned()
        .unwrap();
    assert_eq!(resource.resource_name, (letter.id + 1_000).to_string());
    // A letter id is its service's own: another service has no such letter.
    let elsewhere = retry_at(&mut ops, ShopService::Payment, letter.id)
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound, "{elsewhere:?}");
    assert_eq!(
        list_at(&mut ops, ShopService::Inventory).await.unwrap()[0].state(),
        DeadLetterState::Parked,
        "refused requests change nothing"
    );

    // After the fix, the operator's retry through the front door completes the checkout.
    restore(&mut clients, "LAMP", 5).await;
    let retried = retry_at(&mut ops, ShopService::Inventory, letter.id)
        .await
        .unwrap();
    assert_eq!(retried.state(), DeadLetterState::Retried);
    assert_eq!(retried.settle_note, "handled");
    // The service records the person the orchestrator relayed for; its log names them too.
    assert_eq!(retried.settled_by, format!("{operator} via orchestrator"));
    assert!(
        logged(
            &stack,
            &[
                "dead letter retried for an operator",
                operator,
                "inventory-svc"
            ]
        ),
        "the orchestrator's log names the operator"
    );
    let ended = all_terminal(&mut clients).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].checkout_id, placed.checkout_id);
    assert_eq!(
        ended[0].status(),
        pb::CheckoutStatus::Completed,
        "{ended:?}"
    );
    let again = retry_at(&mut ops, ShopService::Inventory, letter.id)
        .await
        .unwrap();
    assert_eq!(again, retried, "a second retry changes nothing");
    let late = discard_at(&mut ops, ShopService::Inventory, letter.id, "too late")
        .await
        .unwrap_err();
    refused_because(&late, Code::FailedPrecondition, reason::DEAD_LETTER_RETRIED);
    assert_invariants(&mut clients, &ended, &[("LAMP", 5)]).await;
}

#[tokio::test]
async fn the_trackers_and_a_services_unreadable_letters_are_discarded_at_the_front_door() {
    let (stack, _clients) = stack_with_options(StackOptions::default(), &[]).await;
    publish_garbage(&stack).await;
    // payment-svc consumes OrderPlaced; the orchestrator's tracker follows every order
    // event: both park it.
    let in_payment = parked_on(&mut admin(&stack, Svc::Payment), GARBAGE_SUBJECT).await;
    let in_tracker = parked_on(&mut admin(&stack, Svc::Orchestrator), GARBAGE_SUBJECT).await;
    let mut ops = front_door(&stack, "ops-erin", true);
    let tracked = list_at(&mut ops, ShopService::Orchestrator).await.unwrap();
    assert_eq!(tracked, std::slice::from_ref(&in_tracker));

    for (service, letter) in [
        (ShopService::Orchestrator, &in_tracker),
        (ShopService::Payment, &in_payment),
    ] {
        let unreadable = retry_at(&mut ops, service, letter.id).await.unwrap_err();
        refused_because(
            &unreadable,
            Code::FailedPrecondition,
            reason::DEAD_LETTER_UNREADABLE,
        );
        let discarded = discard_at(&mut ops, service, letter.id, "garbage from a test client")
            .await
            .unwrap();
        assert_eq!(discarded.state(), DeadLetterState::Discarded, "{service:?}");
        assert_eq!(discarded.settle_note, "garbage from a test client");
        // In process or relayed, the letter records the person and the relay.
        assert_eq!(
            discarded.settled_by, "ops-erin via orchestrator",
            "{service:?}"
        );
        let after = retry_at(&mut ops, service, letter.id).await.unwrap_err();
        refused_because(
            &after,
            Code::FailedPrecondition,
            reason::DEAD_LETTER_DISCARDED,
        );
    }
    // What the operator's certificate reads on each service agrees.
    assert_eq!(
        letters(&mut admin(&stack, Svc::Orchestrator)).await[0].state(),
        DeadLetterState::Discarded
    );
    assert_eq!(
        letters(&mut admin(&stack, Svc::Payment)).await[0].state(),
        DeadLetterState::Discarded
    );
    assert!(logged(
        &stack,
        &[
            "dead letter discarded for an operator",
            "ops-erin",
            "orchestrator"
        ]
    ));
}
