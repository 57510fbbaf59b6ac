//! Retention from outside: a stack whose every binary keeps finished records for 3 s
//! (`RETENTION`) and sweeps every 500 ms (`RETENTION_INTERVAL`). What has finished goes
//! (the checkout answers NOT_FOUND, its key starts a new checkout, the services' keys go);
//! what is still needed stays: a parked checkout (which is no longer resumed, since the
//! services have forgotten its calls' keys), a checkout in flight across many sweeps, a
//! dead letter, inbox rows the stream could still redeliver; a dead letter settled a
//! retention ago goes.

use std::time::Duration;

use e2e::{
    Stack, Svc,
    clients::Clients,
    scenario::{
        assert_invariants, options, place, place_in, place_until_accepted, stack_with_options,
    },
};
use shop_proto::checkout::v1 as pb;
use sqlx::{Connection as _, PgConnection};
use tonic::Code;

const RETENTION: Duration = Duration::from_secs(3);

/// Polls `GetCheckout` until `done` says yes (at most ~40 s).
async fn until(
    clients: &mut Clients,
    checkout_id: &str,
    what: &str,
    done: impl Fn(&Result<pb::Checkout, tonic::Status>) -> bool,
) -> Result<pb::Checkout, tonic::Status> {
    for _ in 0..400 {
        let got = clients
            .checkout
            .get_checkout(pb::GetCheckoutRequest {
                checkout_id: checkout_id.into(),
                ..Default::default()
            })
            .await
            .map(|reply| reply.into_inner().checkout.expect("a checkout"));
        if done(&got) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("checkout {checkout_id} never {what}");
}

async fn terminal(clients: &mut Clients, checkout_id: &str) -> pb::Checkout {
    until(clients, checkout_id, "ended", |got| {
        got.as_ref().is_ok_and(|c| {
            matches!(
                c.status(),
                pb::CheckoutStatus::Completed | pb::CheckoutStatus::Cancelled
            )
        })
    })
    .await
    .expect("the checkout is there")
}

/// Waits until `GetCheckout` answers NOT_FOUND (panics if it never does).
async fn swept(clients: &mut Clients, checkout_id: &str) {
    until(clients, checkout_id, "was swept", |got| {
        got.as_ref()
            .is_err_and(|status| status.code() == Code::NotFound)
    })
    .await
    .expect_err("swept");
}

async fn db(stack: &Stack, svc: Svc) -> PgConnection {
    PgConnection::connect(stack.database_url(svc))
        .await
        .expect("the service's database")
}

async fn count(db: &mut PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(db)
        .await
        .expect("a count")
}

#[tokio::test]
async fn finished_records_go_and_everything_still_needed_stays() {
    let mut options = options();
    options.env.extend([
        ("RETENTION".into(), "3s".into()),
        ("RETENTION_INTERVAL".into(), "500ms".into()),
    ]);
    // The slow checkout below waits 6 s in one call: give its attempt the time.
    options.orchestrator_env.extend([
        ("ATTEMPT_TIMEOUT".into(), "10s".into()),
        ("STEP_DEADLINE".into(), "30s".into()),
    ]);
    let (stack, mut clients) = stack_with_options(options, &[("MUG", 700, 100)]).await;

    // An unresolved dead letter, parked long ago.
    let mut payments = db(&stack, Svc::Payment).await;
    sqlx::query(
        "INSERT INTO dead_letters (event_id, subject, consumer, deliveries, reason, payload, parked_at)
         VALUES ('', 'shop.events.order.OrderPlaced', 'payment', 5, 'not an Envelope', 'x',
                 now() - interval '1 day')",
    )
    .execute(&mut payments)
    .await
    .expect("a dead letter");
    // And one an operator discarded long ago: its record has served its time.
    sqlx::query(
        "INSERT INTO dead_letters (event_id, subject, consumer, deliveries, reason, payload,
                                   parked_at, state, settled_at, settled_by, settle_note)
         VALUES ('', 'shop.events.order.OrderPlaced', 'payment', 5, 'not an Envelope', 'x',
                 now() - interval '2 days', 'discarded', now() - interval '1 day',
                 'operator', 'garbage')",
    )
    .execute(&mut payments)
    .await
    .expect("a settled dead letter");

    // Finished: one checkout in each mode.
    let done = place("done", "tok_visa", "FR", &[("MUG", 1)]);
    let orchestrated = place_until_accepted(&clients, done.clone(), None).await;
    let orchestrated = terminal(&mut clients, &orchestrated.checkout_id).await;
    let replay = place_until_accepted(&clients, done.clone(), None).await;
    assert_eq!(
        replay.checkout_id, orchestrated.checkout_id,
        "a replay within retention"
    );
    let by_events = place_in(
        pb::CoordinationMode::Choreographed,
        "done-by-events",
        "tok_visa",
        "FR",
        &[("MUG", 1)],
    );
    let by_events = place_until_accepted(&clients, by_events, None).await;
    let by_events = terminal(&mut clients, &by_events.checkout_id).await;
    assert_eq!(orchestrated.status(), pb::CheckoutStatus::Completed);
    assert_eq!(by_events.status(), pb::CheckoutStatus::Completed);
    assert_invariants(
        &mut clients,
        &[orchestrated.clone(), by_events.clone()],
        &[],
    )
    .await;
    let keys = count(&mut payments, "SELECT count(*) FROM idempotency_keys").await;
    assert!(keys > 0, "the checkouts left keys for the sweep to take");

    // Parked: shipping refuses AQ and the refund is refused once, so the saga waits for
    // a person, far longer than the retention.
    let parked = place_until_accepted(
        &clients,
        place("parked", "tok_visa", "AQ", &[("MUG", 2)]),
        Some("svc=payment-svc,method=Refund,code=failed_precondition,times=1"),
    )
    .await;
    until(&mut clients, &parked.checkout_id, "parked", |got| {
        got.as_ref()
            .is_ok_and(|c| c.status() == pb::CheckoutStatus::NeedsAttention)
    })
    .await
    .expect("parked");

    // In flight across a dozen sweeps: shipping holds its call 6 s before working.
    let slow = place_until_accepted(
        &clients,
        place("slow", "tok_visa", "FR", &[("MUG", 1)]),
        Some("svc=shipping-svc,method=CreateShipment,before_ms=6000"),
    )
    .await;

    // The finished ones go, rows and all; their key is free again.
    swept(&mut clients, &orchestrated.checkout_id).await;
    swept(&mut clients, &by_events.checkout_id).await;
    let mut orchestrator = db(&stack, Svc::Orchestrator).await;
    let swept_ids = vec![
        orchestrated.checkout_id.clone(),
        by_events.checkout_id.clone(),
    ];
    for (table, sql) in [
        (
            "saga_steps",
            "SELECT count(*) FROM saga_steps WHERE saga_id = ANY($1::uuid[])",
        ),
        (
            "saga_events",
            "SELECT count(*) FROM saga_events WHERE saga_id = ANY($1::uuid[])",
        ),
    ] {
        let left: i64 = sqlx::query_scalar(sql)
            .bind(&swept_ids)
            .fetch_one(&mut orchestrator)
            .await
            .expect("a count");
        assert_eq!(left, 0, "{table} rows of swept sagas");
    }
    let again = place_until_accepted(&clients, done, None).await;
    assert_ne!(
        again.checkout_id, orchestrated.checkout_id,
        "a swept key starts anew"
    );

    // The slow one finished correctly although sweeps ran all through it.
    let slow = terminal(&mut clients, &slow.checkout_id).await;
    assert_eq!(slow.status(), pb::CheckoutStatus::Completed, "{slow:?}");
    assert_invariants(&mut clients, &[slow], &[]).await;

    // The parked one is still there, whole. Resuming it now would compensate by keys the
    // services have swept, so the orchestrator refuses, and changes nothing.
    let still = until(&mut clients, &parked.checkout_id, "stayed", |got| {
        got.is_ok()
    })
    .await
    .expect("parked");
    assert_eq!(
        still.status(),
        pb::CheckoutStatus::NeedsAttention,
        "{still:?}"
    );
    assert!(!still.steps.is_empty());
    let refused = clients
        .checkout
        .resume_checkout(pb::ResumeCheckoutRequest {
            checkout_id: parked.checkout_id.clone(),
        })
        .await
        .expect_err("a checkout parked beyond retention is not resumed");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("RETENTION"), "{refused:?}");
    let after = until(&mut clients, &parked.checkout_id, "stayed", |got| {
        got.is_ok()
    })
    .await
    .expect("parked");
    assert_eq!(after, still, "the refusal changed the checkout");

    // The services swept their keys past the retention; the inbox keeps what the stream
    // could still redeliver; the dead letter waits for a person.
    tokio::time::sleep(RETENTION + Duration::from_secs(2)).await;
    for svc in [Svc::Order, Svc::Payment, Svc::Inventory, Svc::Shipping] {
        let mut db = db(&stack, svc).await;
        let old =
            "SELECT count(*) FROM idempotency_keys WHERE created_at < now() - interval '4 seconds'";
        assert_eq!(count(&mut db, old).await, 0, "{svc:?}: old keys left");
        let inbox = count(&mut db, "SELECT count(*) FROM inbox").await;
        assert!(
            inbox > 0,
            "{svc:?}: the inbox outlives the retention, as the stream does"
        );
    }
    let parked = count(
        &mut payments,
        "SELECT count(*) FROM dead_letters WHERE state = 'parked'",
    )
    .await;
    assert_eq!(
        parked, 1,
        "dead letters stay until an operator settles them"
    );
    let letters = count(&mut payments, "SELECT count(*) FROM dead_letters").await;
    assert_eq!(letters, 1, "a letter settled a retention ago is swept");
}
