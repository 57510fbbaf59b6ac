//! The checker must catch what it claims to check: a clean run passes, and the same run
//! tampered with behind the saga's back (a refund, a restock) is reported.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use e2e::{Stack, StackOptions, Svc, clients::Clients};
use loadgen::{
    check::{CheckConfig, Verdict, check},
    interrupt::Stop,
    load::{self, LoadConfig, Mix, RunState},
};
use platform::security::Principal;
use shop_proto::{
    checkout::v1 as pb,
    inventory::v1 as inventory,
    payment::v1::{self as payment, payment_service_client::PaymentServiceClient},
};

#[tokio::test]
async fn the_checker_passes_a_clean_run_and_catches_tampering() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let mut clients = Clients::of(&stack);
    let mut state = load::setup(&mut clients, "audit").await.unwrap();
    let config = LoadConfig {
        run_id: "audit".into(),
        concurrency: 4,
        rate: None,
        duration: None,
        count: Some(20),
        mix: Mix {
            declined: 0.2,
            ..Mix::default()
        },
        deadline: Duration::from_secs(10),
        retry_unavailable: false,
        progress: false,
        live: Default::default(),
        stop: Stop::default(),
    };
    let report = load::run(&clients, &config, &mut state).await.unwrap();
    assert_eq!(report.requests, 20);
    let clean = verdict(&mut clients, &state, &Stop::default()).await;
    assert!(clean.violations.is_empty(), "{:#?}", clean.violations);
    assert_eq!((clean.checkouts, clean.checked, clean.stuck), (20, 20, 0));
    assert!(
        !clean.partial && clean.settled_after_s.is_some(),
        "{clean:?}"
    );

    // Stopped before it starts, the checker reports a partial verdict, not an error.
    let stop = Stop::default();
    stop.stop();
    let cut = verdict(&mut clients, &state, &stop).await;
    assert!(cut.partial, "{cut:?}");
    assert!(cut.checked < 20, "{cut:?}");

    // Refund one completed checkout's payment directly, and restock one sku.
    let completed = clients
        .checkout
        .list_checkouts(pb::ListCheckoutsRequest {
            mode: pb::CoordinationMode::Unspecified.into(),
            page_size: 1,
            page_token: String::new(),
            status: pb::CheckoutStatus::Completed.into(),
            customer_id: "audit".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .checkouts
        .remove(0);
    // Only the orchestrator may refund: the tampering comes with its certificate.
    let orchestrator = stack
        .pki()
        .unwrap()
        .security(Principal::Orchestrator)
        .unwrap();
    PaymentServiceClient::new(stack.channel_as(Svc::Payment, &orchestrator))
        .refund(payment::RefundRequest {
            idempotency_key: "tamper".into(),
            payment_id: completed.payment_id.clone(),
            charge_idempotency_key: String::new(),
            reason: "behind the saga's back".into(),
        })
        .await
        .unwrap();
    let (sku, stocked) = state.skus[0].clone();
    let stock = clients
        .inventory
        .get_stock(inventory::GetStockRequest { sku: sku.clone() })
        .await
        .unwrap()
        .into_inner();
    clients
        .inventory
        .set_stock(inventory::SetStockRequest {
            sku: sku.clone(),
            quantity: stock.available + 5,
        })
        .await
        .unwrap();

    let tampered = verdict(&mut clients, &state, &Stop::default()).await;
    let found = |needle: &str| tampered.violations.iter().any(|v| v.contains(needle));
    assert!(
        found(&completed.checkout_id) && found("captured"),
        "{:#?}",
        tampered.violations
    );
    assert!(
        found(&format!("!= stocked {stocked}")),
        "{:#?}",
        tampered.violations
    );
    assert_eq!(tampered.violations.len(), 2, "{:#?}", tampered.violations);
}

/// The checker with a 10 s wait, eight checkouts at once.
async fn verdict(clients: &mut Clients, state: &RunState, stop: &Stop) -> Verdict {
    let config = CheckConfig {
        wait: Duration::from_secs(10),
        concurrency: 8,
    };
    check(clients, state, &config, &Default::default(), stop)
        .await
        .unwrap()
}
