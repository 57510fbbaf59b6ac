//! Failure semantics across real processes: a second orchestrator taking over a dead
//! one's sagas, a compensation that keeps failing beside healthy checkouts, callers that
//! give up after a few milliseconds, requests that are not what they claim to be, and a
//! Postgres with no connection to spare.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use e2e::{
    Svc,
    clients::Clients,
    net::free_port,
    postgres::{Postgres, Shutdown},
    scenario::{
        all_terminal, assert_completed_or_undone, assert_invariants, every_checkout_ends,
        get_checkout, options, place, place_spread, place_until_accepted, request, stack_with,
        stack_with_options,
    },
    stack::{Stack, StackOptions, bin_dir, logged_command},
};
use futures::future::join_all;
use shop_proto::checkout::v1::{self as pb, checkout_service_client::CheckoutServiceClient};
use sqlx::{Connection, PgConnection};
use tonic::Code;

/// The article's "single point of failure", answered: two orchestrators on one database
/// share the checkouts; one is SIGKILLed with checkouts in flight, and the other finishes
/// every one of them (its recovery claims them once their leases expire), exactly once.
#[tokio::test]
async fn a_second_orchestrator_finishes_every_saga_a_killed_one_held() {
    let (mut stack, clients) = stack_with(&[("MUG", 700, 100)]).await;
    let replica = stack.start_replica().await.expect("the replica starts");
    let mut survivor = Clients {
        checkout: CheckoutServiceClient::with_interceptor(
            replica.channel(),
            stack.token("operator", true).expect("a token"),
        ),
        ..clients.clone()
    };
    // Slow shipments (within one attempt's timeout) hold the checkouts in flight when
    // the first orchestrator dies.
    let fault = "svc=shipping-svc,method=CreateShipment,before_ms=300";
    let calls: Vec<_> = (0..30)
        .map(|i| {
            let (first, survivor) = (clients.clone(), survivor.clone());
            tokio::spawn(async move {
                let message = place(&format!("failover-{i}"), "tok_visa", "FR", &[("MUG", 1)]);
                if i % 2 == 1 {
                    return (
                        false,
                        place_until_accepted(&survivor, message, Some(fault)).await,
                    );
                }
                // Through the orchestrator about to die; a client whose call is cut
                // retries the same key at the other one, as behind a load balancer.
                let mut front = first.checkout.clone();
                let once = front
                    .place_order(request(
                        message.clone(),
                        Some(fault),
                        Duration::from_secs(20),
                    ))
                    .await;
                match once {
                    Ok(reply) => (false, reply.into_inner().checkout.expect("a checkout")),
                    Err(status) => {
                        assert!(
                            matches!(
                                status.code(),
                                Code::Unavailable | Code::Unknown | Code::Cancelled
                            ),
                            "{status:?}"
                        );
                        (
                            true,
                            place_until_accepted(&survivor, message, Some(fault)).await,
                        )
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let killed_at = Instant::now();
    stack.kill(Svc::Orchestrator);
    let placed: Vec<(bool, pb::Checkout)> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("a caller task"))
        .collect();
    let checkouts = all_terminal(&mut survivor).await;
    eprintln!(
        "takeover: every checkout ended {:?} after the kill (SAGA_LEASE 2s, RECOVERY_INTERVAL 300ms)",
        killed_at.elapsed()
    );
    let cut = placed.iter().filter(|(cut, _)| *cut).count();
    assert!(cut > 0, "no call was in flight at the killed orchestrator");
    assert_eq!(checkouts.len(), 30, "one checkout per key");
    for (_, p) in &placed {
        assert!(checkouts.iter().any(|c| c.checkout_id == p.checkout_id));
    }
    // Every checkout ended (all_terminal), as it should have: completed, or, where a
    // slow machine made a step miss its deadline, cancelled as dependency_unavailable
    // with everything undone; never anything else.
    assert_completed_or_undone(&checkouts);
    assert_invariants(&mut survivor, &checkouts, &[("MUG", 100)]).await;
}

/// One checkout whose ReleaseStock keeps failing is retried for as long as it takes; it
/// must not open the breaker or drain the retry budget that healthy checkouts' forward
/// calls to the same service need.
#[tokio::test]
async fn a_compensation_that_keeps_failing_does_not_fail_healthy_checkouts() {
    let (_stack, mut clients) = stack_with(&[("MUG", 700, 100)]).await;
    let stuck = place("stuck", "tok_visa", "AQ", &[("MUG", 1)]);
    let fault = "svc=inventory-svc,method=ReleaseStock,code=unavailable,times=1000000";
    let stuck = clients
        .checkout
        .place_order(request(stuck, Some(fault), Duration::from_secs(2)))
        .await
        .expect("PlaceOrder answers with the checkout as it stands")
        .into_inner()
        .checkout
        .expect("a checkout");
    // Well past the breaker's threshold (10 consecutive failures) before going on.
    let mut attempts = 0;
    for _ in 0..200 {
        let c = get_checkout(&mut clients, &stuck.checkout_id).await;
        attempts = c
            .steps
            .iter()
            .find(|s| s.name == "reserve_stock")
            .map_or(0, |s| s.compensation_attempts);
        if attempts >= 15 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(attempts >= 15, "ReleaseStock attempted {attempts} times");

    let healthy: Vec<_> = (0..10)
        .map(|i| {
            let clients = clients.clone();
            tokio::spawn(async move {
                let message = place(&format!("healthy-{i}"), "tok_visa", "FR", &[("MUG", 1)]);
                place_until_accepted(&clients, message, None).await
            })
        })
        .collect();
    let healthy: Vec<pb::Checkout> = join_all(healthy)
        .await
        .into_iter()
        .map(|r| r.expect("a caller task"))
        .collect();
    for c in &healthy {
        assert_eq!(c.status(), pb::CheckoutStatus::Completed, "{c:#?}");
    }
    let stuck = get_checkout(&mut clients, &stuck.checkout_id).await;
    assert_eq!(stuck.status(), pb::CheckoutStatus::Compensating);
    assert_invariants(&mut clients, &healthy, &[]).await;
}

/// A caller whose deadline is a few milliseconds gets DEADLINE_EXCEEDED, but the checkout it
/// started (if it got that far) is driven to its end at once, not abandoned until its
/// lease expires: here the lease is a minute, and every checkout must end well before.
#[tokio::test]
async fn a_caller_that_gives_up_after_a_few_milliseconds_does_not_stall_its_checkout() {
    let mut options = options();
    options
        .orchestrator_env
        .retain(|(name, _)| name != "SAGA_LEASE");
    options
        .orchestrator_env
        .push(("SAGA_LEASE".into(), "60s".into()));
    let (stack, mut clients) = stack_with_options(options, &[("MUG", 700, 100)]).await;
    let messages: Vec<_> = (0..12)
        .map(|i| place(&format!("hasty-{i}"), "tok_visa", "FR", &[("MUG", 1)]))
        .collect();
    for (i, message) in messages.iter().enumerate() {
        let mut front = clients.checkout.clone();
        let hasty = request(
            message.clone(),
            None,
            Duration::from_millis(2 + i as u64 % 6),
        );
        match front.place_order(hasty).await {
            // Fast enough after all: fine, the checkout is what it is.
            Ok(reply) => assert!(reply.into_inner().checkout.is_some()),
            // tonic's client keeps the deadline too and, when its own timer is first, says
            // CANCELLED "Timeout expired" itself; what the server answers is checked below.
            Err(status) => assert!(
                matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
                "{status:?}"
            ),
        }
    }
    // The same keys again, patiently: each must come back ended, long before a lease of
    // a minute could have let recovery resume an abandoned saga.
    for message in messages {
        let mut front = clients.checkout.clone();
        let reply = front
            .place_order(request(message, None, Duration::from_secs(20)))
            .await
            .expect("PlaceOrder answers")
            .into_inner()
            .checkout
            .expect("a checkout");
        assert_eq!(reply.status(), pb::CheckoutStatus::Completed, "{reply:#?}");
    }
    // What the server answers a caller whose deadline passes, seen by a client that keeps
    // no timer of its own: gRPC's DEADLINE_EXCEEDED, not tonic's CANCELLED.
    let hasty = place("hasty-curl", "tok_visa", "FR", &[("MUG", 1)]);
    let (status, message) = place_with_curl(&stack, &hasty, "2m");
    assert_eq!(status, "4", "grpc-status: {message}");
    assert!(message.contains("deadline"), "{message}");
    // Its checkout too goes on and ends.
    let mut front = clients.checkout.clone();
    let reply = front
        .place_order(request(hasty, None, Duration::from_secs(20)))
        .await
        .expect("PlaceOrder answers")
        .into_inner()
        .checkout
        .expect("a checkout");
    assert_eq!(reply.status(), pb::CheckoutStatus::Completed, "{reply:#?}");
    let checkouts = all_terminal(&mut clients).await;
    assert_invariants(&mut clients, &checkouts, &[("MUG", 100)]).await;
}

/// PlaceOrder sent by curl over HTTP/2 with the given `grpc-timeout`, as the operator;
/// returns the answer's grpc-status and grpc-message (curl keeps no deadline of its own).
fn place_with_curl(
    stack: &e2e::Stack,
    message: &pb::PlaceOrderRequest,
    grpc_timeout: &str,
) -> (String, String) {
    use prost::Message as _;
    let pki = stack.pki().expect("the stack runs over TLS");
    let encoded = message.encode_to_vec();
    let mut frame = vec![0_u8];
    frame.extend_from_slice(&u32::try_from(encoded.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(&encoded);
    let body = stack.log_dir.join("place-order.grpc");
    std::fs::write(&body, frame).expect("the request body is written");
    let token = pki.token("operator", true).expect("a token");
    let output = std::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--http2",
            "--dump-header",
            "-",
            "--output",
        ])
        .arg("/dev/null")
        .arg("--cacert")
        .arg(pki.ca())
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args(["-H", &format!("grpc-timeout: {grpc_timeout}")])
        .args(["-H", &format!("authorization: Bearer {token}")])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(format!(
            "{}/shop.checkout.v1.CheckoutService/PlaceOrder",
            stack.url(Svc::Orchestrator)
        ))
        .output()
        .expect("curl runs (apt-get install curl)");
    let headers = String::from_utf8_lossy(&output.stdout).to_lowercase();
    let field = |name: &str| {
        headers
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_owned())
            .unwrap_or_default()
    };
    (field("grpc-status:"), field("grpc-message:"))
}

/// Bytes that are not the method's message are the caller's fault (INVALID_ARGUMENT,
/// not tonic's INTERNAL), and so is a message over the 256 KiB limit (RESOURCE_EXHAUSTED,
/// gRPC's convention, not OUT_OF_RANGE): at the front door and at a domain service alike.
#[tokio::test]
async fn malformed_and_oversized_requests_get_the_callers_codes() {
    let (stack, _clients) = stack_with(&[]).await;
    for (svc, path) in [
        (
            Svc::Orchestrator,
            "/shop.checkout.v1.CheckoutService/GetCheckout",
        ),
        (
            Svc::Inventory,
            "/shop.inventory.v1.InventoryService/GetProduct",
        ),
    ] {
        // Field 1 of the request is a string; Money's field 1 is an integer.
        let not_the_message = shop_proto::common::v1::Money {
            amount_minor: 5,
            currency: String::new(),
        };
        let status = raw_call(&stack, svc, path, not_the_message).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
        let huge = shop_proto::common::v1::Money {
            amount_minor: 0,
            currency: "x".repeat(300 * 1024),
        };
        let status = raw_call(&stack, svc, path, huge).await;
        assert_eq!(status.code(), Code::ResourceExhausted, "{path}: {status:?}");
    }
}

/// Sends `message` to `path`, whatever that method's request type is.
async fn raw_call(
    stack: &e2e::Stack,
    svc: Svc,
    path: &'static str,
    message: shop_proto::common::v1::Money,
) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(stack.channel(svc));
    grpc.ready().await.expect("the channel connects");
    let codec = tonic_prost::ProstCodec::<shop_proto::common::v1::Money, ()>::default();
    // An operator's token: the front door checks it before it reads the message.
    let mut request = tonic::Request::new(message);
    if let Some(pki) = stack.pki() {
        let token = pki.token("operator", true).expect("a token");
        let bearer = format!("Bearer {token}").parse().expect("ASCII");
        request.metadata_mut().insert("authorization", bearer);
    }
    grpc.unary(request, http::uri::PathAndQuery::from_static(path), codec)
        .await
        .expect_err("the call fails")
}

/// A front door serving all it may (MAX_IN_FLIGHT) refuses the next call at once with
/// RESOURCE_EXHAUSTED instead of queueing it, and serves again once a call ends.
#[tokio::test]
async fn a_full_front_door_sheds_load_at_once() {
    let mut options = options();
    options
        .orchestrator_env
        .push(("MAX_IN_FLIGHT".into(), "1".into()));
    let (_stack, clients) = stack_with_options(options, &[("SHED", 500, 10)]).await;
    // One checkout holds the only slot while its shipment takes 1.5 s.
    let slow = {
        let mut checkout = clients.checkout.clone();
        tokio::spawn(async move {
            checkout
                .place_order(request(
                    place("shed-1", "tok_visa", "FR", &[("SHED", 1)]),
                    Some("svc=shipping-svc,method=CreateShipment,before_ms=1500"),
                    Duration::from_secs(20),
                ))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut checkout = clients.checkout.clone();
    let shed = checkout
        .list_checkouts(pb::ListCheckoutsRequest::default())
        .await
        .expect_err("the front door is full");
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    // Refused while the slow call still holds the slot: not queued behind it.
    assert!(!slow.is_finished(), "the refusal waited for the slot");
    let placed = slow.await.expect("the task").expect("the slow checkout");
    assert_eq!(
        placed.into_inner().checkout.expect("a checkout").status(),
        pb::CheckoutStatus::Completed
    );
    checkout
        .list_checkouts(pb::ListCheckoutsRequest::default())
        .await
        .expect("served again once the slot is free");
}

/// Postgres stopped for 15 s amid checkouts: every service loses its database at once,
/// PlaceOrder answers UNAVAILABLE meanwhile (the client repeats its key), sagas caught
/// mid-step end one way or the other once it is back, and every service recovers without
/// a restart: every checkout ends, every invariant holds.
#[tokio::test]
async fn postgres_stopped_for_fifteen_seconds_amid_load_loses_nothing() {
    let mut options = options();
    options.own_postgres = true;
    let (stack, mut clients) = stack_with_options(options, &[("OUTAGE", 400, 100)]).await;
    // Spread over the outage: before, during and after it.
    let calls = place_spread(&clients, "OUTAGE", 30, Duration::from_millis(200), None);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stack
        .stop_postgres_for(Duration::from_secs(15), Shutdown::Fast)
        .await
        .expect("Postgres stops and starts again");
    every_checkout_ends(&mut clients, calls, ("OUTAGE", 100)).await;
}

/// The orchestrator commits what a replay re-derives (a step's intent, a forward step's
/// outcome) without waiting for the WAL flush, and only its decisions and a saga's
/// creation with it. The proof that losing the former loses nothing: amid checkouts, the
/// orchestrator is SIGKILLed and its Postgres stopped with `-m immediate` at once, so
/// commits not yet written are gone (its database is on a cluster of its own, as in
/// production, whose WAL writer sleeps 10 s: the services' flushes do not write the
/// orchestrator's records for it); both come back, and every checkout ends, each exactly
/// once, with every invariant holding. What it proves is recovery through lost records;
/// it passes even with every record deferred (lease renewals and full WAL pages still
/// write most of them), so which records must be flushed is pinned by the rules' unit
/// tests (`saga::rules`), not here.
#[tokio::test]
async fn a_crash_of_postgres_and_the_orchestrator_together_loses_no_checkout() {
    let mut options = options();
    options.own_orchestrator_postgres = true;
    let (mut stack, mut clients) = stack_with_options(options, &[("CRASH", 400, 100)]).await;
    // Slow shipments keep checkouts at every step when the crash comes.
    let fault = "svc=shipping-svc,method=CreateShipment,before_ms=150";
    let calls = place_spread(
        &clients,
        "CRASH",
        40,
        Duration::from_millis(40),
        Some(fault),
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    stack.kill(Svc::Orchestrator);
    stack
        .stop_orchestrator_postgres_for(Duration::from_secs(2), Shutdown::Immediate)
        .await
        .expect("the orchestrator's Postgres crashes and starts again");
    stack
        .restart(Svc::Orchestrator)
        .await
        .expect("the orchestrator starts again");
    every_checkout_ends(&mut clients, calls, ("CRASH", 100)).await;
}

/// The orchestrator's Postgres alone crashes (`pg_ctl stop -m immediate`) while the
/// orchestrator runs on, with its drivers holding records the crash took back (written
/// without a WAL flush). A driver must not build on them: its next write finds the
/// saga's version on disk behind its own, and it replays from disk. Every checkout ends,
/// every completed one with every step succeeded on record, and every invariant holds.
///
/// The orchestrator's database is on a cluster of its own whose WAL writer sleeps 10 s,
/// and the crash comes while every checkout waits on a held shipment, after its last
/// (deferred) write and before its next: so the crash takes back their latest records.
#[tokio::test]
async fn a_crash_of_the_orchestrators_postgres_alone_leaves_no_driver_ahead_of_the_disk() {
    let mut options = options();
    options.own_orchestrator_postgres = true;
    options.orchestrator_env.extend([
        ("STEP_DEADLINE".into(), "20s".into()),
        ("ATTEMPT_TIMEOUT".into(), "5s".into()),
        ("SAGA_LEASE".into(), "30s".into()),
    ]);
    let (stack, mut clients) = stack_with_options(options, &[("ALONE", 400, 100)]).await;
    let fault = "svc=shipping-svc,method=CreateShipment,before_ms=2500";
    let calls = place_spread(&clients, "ALONE", 20, Duration::ZERO, Some(fault));
    // Every checkout is in its held shipment by now: its last write was the reservation's
    // outcome and the shipment's intent, both deferred.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack
        .stop_orchestrator_postgres_for(Duration::from_millis(500), Shutdown::Immediate)
        .await
        .expect("the orchestrator's Postgres crashes and starts again");
    let checkouts = every_checkout_ends(&mut clients, calls, ("ALONE", 100)).await;
    assert!(
        checkouts
            .iter()
            .all(|c| c.status() == pb::CheckoutStatus::Completed),
        "{checkouts:#?}"
    );
}

/// A Postgres whose connection slots are all taken is named as the cause, by the harness
/// before it starts a stack and by a service in its log, instead of hiding behind "pool
/// timed out while waiting for an open connection".
#[tokio::test]
async fn a_postgres_without_free_connection_slots_is_named_as_the_cause() {
    let postgres = Arc::new(
        Postgres::start_own_with(&[("max_connections", "20")])
            .await
            .expect("a throwaway Postgres"),
    );
    let refused = Stack::start_on(postgres.clone(), StackOptions::default())
        .await
        .expect_err("a stack needs more than 20 connections");
    let refused = format!("{refused:#}");
    assert!(
        refused.contains("connection slots are free"),
        "the harness should say why: {refused}"
    );

    // Every slot taken by someone else; then a service starts against it.
    let url = postgres
        .create_database("full_house")
        .await
        .expect("a database");
    let mut held = Vec::new();
    for _ in 0..100 {
        match PgConnection::connect(&postgres.admin_url).await {
            Ok(connection) => held.push(connection),
            Err(_) => break,
        }
    }
    assert_eq!(held.len(), 20, "every slot held");
    let log = std::env::temp_dir().join(format!("full-house-{}.log", std::process::id()));
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port().expect("a free port")));
    let binary = bin_dir().expect("the binaries").join("inventory-svc");
    let mut service = logged_command(&binary, addr, &log)
        .expect("a command")
        .env("DATABASE_URL", url)
        .env("DEV_INSECURE", "true")
        .spawn()
        .expect("inventory-svc starts");
    let said = wait_for_log(&log, "no free connection slots", Duration::from_secs(30)).await;
    let _ = service.kill();
    let _ = service.wait();
    drop(held);
    let _ = std::fs::remove_file(&log);
    assert!(said, "inventory-svc's log never named the cause");
}

/// Whether `needle` shows up in the file at `log` within `limit`.
async fn wait_for_log(log: &std::path::Path, needle: &str, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if std::fs::read_to_string(log).is_ok_and(|text| text.contains(needle)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
