//! payment-svc through its gRPC API, against a real Postgres database per test.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use platform::testing::{self, Options, TestServer, bad_fields, reason};
use shop_proto::common::v1 as common;
use shop_proto::payment::v1::{self as pb, payment_service_client::PaymentServiceClient};
use tonic::{Code, transport::Channel};

type Client = PaymentServiceClient<Channel>;

async fn spawn(options: Options) -> (TestServer, Client) {
    let server = testing::spawn(payment_svc::NAME, options, payment_svc::build).await;
    let client = PaymentServiceClient::new(server.channel.clone());
    (server, client)
}

fn order_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn charge(key: &str, order_id: &str, amount_minor: i64, token: &str) -> pb::ChargeRequest {
    pb::ChargeRequest {
        idempotency_key: key.into(),
        order_id: order_id.into(),
        amount: Some(common::Money {
            amount_minor,
            currency: "EUR".into(),
        }),
        payment_token: token.into(),
    }
}

fn refund_by_key(key: &str, charge_key: &str) -> pb::RefundRequest {
    pb::RefundRequest {
        idempotency_key: key.into(),
        payment_id: String::new(),
        charge_idempotency_key: charge_key.into(),
        reason: "saga compensation".into(),
    }
}

async fn payments(client: &mut Client, order_id: &str) -> Vec<(pb::PaymentStatus, i64)> {
    client
        .list_payments(pb::ListPaymentsRequest {
            order_id: order_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .payments
        .into_iter()
        .map(|p| (p.status(), p.amount.map_or(0, |a| a.amount_minor)))
        .collect()
}

#[tokio::test]
async fn approving_tokens_capture_and_refund_returns_the_money() {
    let (_server, mut client) = spawn(Options::default()).await;
    for token in ["tok_visa", "tok_mastercard"] {
        let order = order_id();
        let paid = client
            .charge(charge(&format!("c-{token}"), &order, 2500, token))
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap();
        assert_eq!(paid.status(), pb::PaymentStatus::Captured);
        assert_eq!(
            payments(&mut client, &order).await,
            [(pb::PaymentStatus::Captured, 2500)]
        );

        let refunded = client
            .refund(pb::RefundRequest {
                idempotency_key: format!("r-{token}"),
                payment_id: paid.payment_id.clone(),
                charge_idempotency_key: String::new(),
                reason: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap();
        assert_eq!(refunded.status(), pb::PaymentStatus::Refunded);
        let got = client
            .get_payment(pb::GetPaymentRequest {
                payment_id: paid.payment_id,
            })
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap();
        assert_eq!(got.status(), pb::PaymentStatus::Refunded);
    }
}

#[tokio::test]
async fn declining_tokens_are_results_with_a_reason() {
    let (_server, mut client) = spawn(Options::default()).await;
    for (token, why) in [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
    ] {
        let order = order_id();
        let declined = client
            .charge(charge(&format!("c-{token}"), &order, 100, token))
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap();
        assert_eq!(declined.status(), pb::PaymentStatus::Declined);
        assert_eq!(declined.decline_reason, why);
        // Refunding a decline gives nothing back and leaves it declined.
        let after = client
            .refund(refund_by_key(&format!("r-{token}"), &format!("c-{token}")))
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap();
        assert_eq!(after.status(), pb::PaymentStatus::Declined);
    }
}

#[tokio::test]
async fn replay_charges_once_and_reuse_is_rejected() {
    let (_server, mut client) = spawn(Options::default()).await;
    let order = order_id();
    let first = client
        .charge(charge("k", &order, 900, "tok_visa"))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .charge(charge("k", &order, 900, "tok_visa"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(payments(&mut client, &order).await.len(), 1, "one row");

    let status = client
        .charge(charge("k", &order, 901, "tok_visa"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status), "IDEMPOTENCY_KEY_REUSED");

    // A second capture for the same order under another key is refused.
    let status = client
        .charge(charge("k2", &order, 900, "tok_visa"))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "ORDER_ALREADY_PAID");
    assert_eq!(
        payments(&mut client, &order).await,
        [(pb::PaymentStatus::Captured, 900)]
    );
}

#[tokio::test]
async fn refunding_twice_under_different_keys_is_refused() {
    let (_server, mut client) = spawn(Options::default()).await;
    let order = order_id();
    client
        .charge(charge("c", &order, 900, "tok_visa"))
        .await
        .unwrap();
    let first = client
        .refund(refund_by_key("r1", "c"))
        .await
        .unwrap()
        .into_inner();
    let replay = client
        .refund(refund_by_key("r1", "c"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, replay);
    let status = client.refund(refund_by_key("r2", "c")).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "ALREADY_REFUNDED");
    assert_eq!(
        payments(&mut client, &order).await,
        [(pb::PaymentStatus::Refunded, 900)]
    );
}

#[tokio::test]
async fn refund_before_charge_wins_over_the_late_charge() {
    let (_server, mut client) = spawn(Options::default()).await;
    let order = order_id();
    let early = client
        .refund(refund_by_key("saga/refund", "saga/charge"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(early.payment, None);
    let late = client
        .charge(charge("saga/charge", &order, 900, "tok_visa"))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert_eq!(reason(&late), "CANCELLED_BEFORE_CHARGED");
    assert!(
        payments(&mut client, &order).await.is_empty(),
        "nothing captured"
    );
}

#[tokio::test]
async fn bad_input_names_every_field_and_changes_nothing() {
    let (_server, mut client) = spawn(Options::default()).await;
    let status = client
        .charge(pb::ChargeRequest {
            idempotency_key: "x".repeat(129),
            order_id: "42".into(),
            amount: Some(common::Money {
                amount_minor: 0,
                currency: "EURO".into(),
            }),
            payment_token: "tok_unknown".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "idempotency_key",
            "order_id",
            "amount.amount_minor",
            "amount.currency",
            "payment_token"
        ]
    );
    let status = client
        .charge(pb::ChargeRequest {
            amount: None,
            ..charge("k", &order_id(), 1, "tok_visa")
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["amount"]);

    let status = client
        .refund(pb::RefundRequest {
            idempotency_key: "r".into(),
            payment_id: order_id(),
            charge_idempotency_key: "c".into(),
            reason: "r".repeat(201),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["charge_idempotency_key", "reason"]);

    // The rejected key was not consumed: it works with a valid request.
    let order = order_id();
    client
        .charge(charge("k", &order, 1, "tok_visa"))
        .await
        .unwrap();
    assert_eq!(payments(&mut client, &order).await.len(), 1);

    let status = client
        .get_payment(pb::GetPaymentRequest {
            payment_id: order_id(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .list_payments(pb::ListPaymentsRequest {
            order_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["order_id"]);
}

#[tokio::test]
async fn injected_faults_obey_times_and_are_ignored_when_off() {
    let fault = "svc=payment-svc,method=Charge,code=unavailable,times=1";
    let (_on, mut client) = spawn(Options {
        fault_injection: true,
        ..Options::default()
    })
    .await;
    let order = order_id();
    let status = client
        .charge(testing::with_fault(
            charge("f", &order, 5, "tok_visa"),
            fault,
            "f",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(payments(&mut client, &order).await.is_empty());
    client
        .charge(testing::with_fault(
            charge("f", &order, 5, "tok_visa"),
            fault,
            "f",
        ))
        .await
        .unwrap();
    assert_eq!(payments(&mut client, &order).await.len(), 1);

    let (_off, mut client) = spawn(Options::default()).await;
    let order = order_id();
    client
        .charge(testing::with_fault(
            charge("f", &order, 5, "tok_visa"),
            fault,
            "f",
        ))
        .await
        .unwrap();
    assert_eq!(payments(&mut client, &order).await.len(), 1);
}
