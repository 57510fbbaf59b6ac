//! Faults between hosts: the stack spread over network namespaces of its own
//! ([`e2e::hosts`]: Postgres, NATS and each binary on a host with its own address on a
//! private bridge), and the network between two of them cut while checkouts run: both
//! ways, one way, a service from its database, a service from the broker; or made slow
//! and lossy (a delay proxy on the path, packets dropped at random). Every test
//! ends with the checker over the final state: every checkout ends, one per key, no
//! charge without an order, no double charge, no stock held for a cancelled checkout,
//! stock conserved. One more test checks the fault helpers themselves, with TCP connects
//! and, for the delay, timed PINGs.
//!
//! The tests need root (namespaces, veths, iptables); elsewhere each prints why and
//! passes without running. Measured recovery times are printed (`--nocapture`).

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use e2e::{
    StackOptions, Svc,
    clients::Clients,
    hosts::{Host, Hosts},
    nats::Nats,
    scenario::{
        all_terminal, assert_completed_or_undone, assert_invariants, every_checkout_ends,
        get_checkout, options, place, place_briefly, place_briefly_with, place_in, place_spread,
        place_until_accepted, stack_with_options,
    },
    stack::Stack,
};
use futures::future::join_all;
use shop_proto::{
    checkout::v1::{self as pb, checkout_service_client::CheckoutServiceClient},
    inventory::v1 as inventory,
};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const ORCHESTRATOR: Host = Host::Svc(Svc::Orchestrator);
const PAYMENT: Host = Host::Svc(Svc::Payment);
const INVENTORY: Host = Host::Svc(Svc::Inventory);

/// The test hosts, or `None` (the reason printed) where this machine cannot make them.
fn hosts() -> Option<Arc<Hosts>> {
    Hosts::create()
        .unwrap_or_else(|error| panic!("the test hosts: {error:#}"))
        .map(Arc::new)
}

/// A stack across `hosts` with the suite's short timeouts (`scenario::options`: 500 ms
/// per attempt, 3 s per step, leases of 2 s) and the given catalog.
async fn stack_on(hosts: &Arc<Hosts>, products: &[(&str, i64, i64)]) -> (Stack, Clients) {
    let options = StackOptions {
        hosts: Some(hosts.clone()),
        ..options()
    };
    stack_with_options(options, products).await
}

/// The orchestrator and payment-svc lose each other for 20 s while checkouts arrive
/// before, during and after: charges without an answer fail their step, the refunds by
/// the charges' keys wait out the partition (the compensation lane retries for as long as
/// it takes), and after the heal every checkout ends: completed, or cancelled as
/// `dependency_unavailable` with nothing captured.
#[tokio::test]
async fn orchestrator_and_payment_partitioned_for_twenty_seconds_amid_checkouts() {
    let Some(hosts) = hosts() else { return };
    let (_stack, mut clients) = stack_on(&hosts, &[("SPLIT", 500, 100)]).await;
    // One every 500 ms for 30 s: the partition runs from 2 s to 22 s.
    let calls = place_spread(&clients, "SPLIT", 60, Duration::from_millis(500), None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    hosts
        .partition(ORCHESTRATOR, PAYMENT)
        .expect("the partition");
    tokio::time::sleep(Duration::from_secs(20)).await;
    hosts.heal().expect("the heal");
    let healed = Instant::now();
    let healed_at = SystemTime::now();
    let checkouts = every_checkout_ends(&mut clients, calls, ("SPLIT", 100)).await;
    // The first checkout created after the heal that completed: when new checkouts got
    // through again.
    let completing_again = checkouts
        .iter()
        .filter(|c| c.status() == pb::CheckoutStatus::Completed)
        .filter_map(|c| {
            let created = c.create_time.as_ref()?;
            let created = UNIX_EPOCH
                + Duration::new(
                    u64::try_from(created.seconds).ok()?,
                    u32::try_from(created.nanos).ok()?,
                );
            created.duration_since(healed_at).ok()
        })
        .min();
    eprintln!(
        "orchestrator | payment-svc, 20 s: every checkout ended {:?} after the heal; the \
         first created after it to complete was created {completing_again:?} after it",
        healed.elapsed()
    );
    let outcomes = outcomes(&checkouts);
    eprintln!("outcomes: {outcomes:?}");
    assert_completed_or_undone(&checkouts);
    assert!(
        checkouts
            .iter()
            .any(|c| c.status() == pb::CheckoutStatus::Completed),
        "nothing completed, not even before the partition: {outcomes:?}"
    );
    assert!(
        checkouts
            .iter()
            .any(|c| c.failure_reason == "dependency_unavailable"),
        "no checkout felt the partition: {outcomes:?}"
    );
}

/// Two orchestrator replicas; the one driving a batch of checkouts loses Postgres (both
/// ways) while it still reaches every service, for 10 s. It can record nothing, and its
/// drivers stop by themselves within two thirds of a lease (they cannot know the lease is
/// theirs any more), before the lease lets the other replica take the sagas over. The
/// other finishes every checkout from what is on disk, repeating each step's key; the
/// cut-off replica's late calls are repeats of those keys, so the checker finds one
/// order, one charge and one reservation per checkout. After the heal the cut-off
/// replica changes nothing: its fenced writes fail and it serves again, not restarted.
#[tokio::test]
async fn an_orchestrator_replica_cut_off_from_postgres_fences_itself_and_the_other_finishes() {
    let Some(hosts) = hosts() else { return };
    let (stack, mut clients) = stack_on(&hosts, &[("FENCE", 500, 100)]).await;
    let mut replica = stack.start_replica().await.expect("the replica starts");
    let through_replica = Clients {
        checkout: CheckoutServiceClient::with_interceptor(
            replica.channel(),
            stack.token("operator", true).expect("a token"),
        ),
        ..clients.clone()
    };
    // Every step slow (each attempt still within its timeout), so the replica is mid-saga
    // in all of them when the cut comes: 2.25 s of steps in all, longer than the 2 s a
    // PlaceOrder that `place_briefly` repeats on a busy machine waits.
    let slow = "svc=order-svc,method=CreateOrder,before_ms=450;\
                svc=payment-svc,method=Charge,before_ms=450;\
                svc=inventory-svc,method=ReserveStock,before_ms=450;\
                svc=shipping-svc,method=CreateShipment,before_ms=450;\
                svc=order-svc,method=ConfirmOrder,before_ms=450";
    let placed = join_all((0..12).map(|i| {
        let mut message = place(&format!("FENCE-{i}"), "tok_visa", "FR", &[("FENCE", 1)]);
        message.idempotency_key = format!("fence-{i}");
        let clients = through_replica.clone();
        async move { place_briefly_with(&clients, message, Some(slow)).await }
    }))
    .await;
    assert!(
        placed
            .iter()
            .all(|c| c.status() == pb::CheckoutStatus::Running),
        "all in flight at the replica: {:?}",
        outcomes(&placed)
    );
    hosts
        .partition(Host::Replica, Host::Postgres)
        .expect("the partition");
    let cut = Instant::now();
    // The other replica finishes them while the cut lasts.
    let checkouts = all_terminal(&mut clients).await;
    let ended = cut.elapsed();
    eprintln!(
        "replica | postgres: every checkout ended {ended:?} after the cut, through the other \
         replica: {:?}",
        outcomes(&checkouts)
    );
    assert!(
        ended < Duration::from_secs(10),
        "not within the cut: {ended:?}"
    );
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(cut.elapsed())).await;
    hosts.heal().expect("the heal");
    assert_eq!(checkouts.len(), placed.len());
    assert_completed_or_undone(&checkouts);
    assert_invariants(&mut clients, &checkouts, &[("FENCE", 100)]).await;

    let log = std::fs::read_to_string(&replica.log).expect("the replica's log");
    let fenced = log.matches("fenced by time").count();
    eprintln!("the cut-off replica's drivers fenced themselves: {fenced}");
    assert!(
        fenced > 0,
        "the replica was driving sagas when it lost Postgres, and none stopped itself"
    );
    // Healed, not restarted: it serves again.
    let serving = health_becomes(
        replica.channel(),
        "shop.checkout.v1.CheckoutService",
        ServingStatus::Serving,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        serving.is_some(),
        "the cut-off replica serves again after the heal"
    );
    replica.kill();
}

/// A slow, lossy link between the orchestrator and every service: 100 ms of delay each
/// way (a delay proxy on the orchestrator's host: every call's round trip 200 ms longer)
/// and 5 % of the packets lost, both ways, while 30 checkouts arrive over 15 s. A
/// checkout's five calls after it is recorded take at least 1 s; TCP resends what is lost
/// (its first resend after about 200 ms), so some attempts outlive `ATTEMPT_TIMEOUT`
/// (500 ms) and are retried under their keys. Every checkout ends, and the checker finds
/// every invariant holding; how long they took and how they ended is printed.
#[tokio::test]
async fn a_slow_lossy_link_between_the_orchestrator_and_every_service_slows_checkouts_but_breaks_none()
 {
    let Some(hosts) = hosts() else { return };
    const EACH_WAY: Duration = Duration::from_millis(100);
    let services = [Svc::Order, Svc::Payment, Svc::Inventory, Svc::Shipping].map(Host::Svc);
    // Before the stack: a delay applies to the connections opened after it.
    for service in services {
        hosts
            .delay(ORCHESTRATOR, service, EACH_WAY)
            .expect("the delay");
    }
    let (_stack, mut clients) = stack_on(&hosts, &[("SLOW", 500, 100)]).await;
    for service in services {
        hosts
            .lossy(ORCHESTRATOR, service, 0.05)
            .expect("the lossy link");
    }
    let calls = place_spread(&clients, "SLOW", 30, Duration::from_millis(500), None);
    let checkouts = every_checkout_ends(&mut clients, calls, ("SLOW", 100)).await;
    hosts.heal().expect("the heal");
    let took = |c: &pb::Checkout| {
        let (start, end) = (c.create_time.as_ref()?, c.update_time.as_ref()?);
        let nanos =
            (end.seconds - start.seconds) * 1_000_000_000 + i64::from(end.nanos - start.nanos);
        Some(Duration::from_nanos(u64::try_from(nanos).ok()?))
    };
    let mut durations: Vec<Duration> = checkouts.iter().filter_map(took).collect();
    durations.sort();
    let at = |share: f64| durations[((durations.len() - 1) as f64 * share) as usize];
    let retried = checkouts
        .iter()
        .flat_map(|c| &c.steps)
        .filter(|s| s.attempts > 1)
        .count();
    eprintln!(
        "100 ms each way + 5 % loss, orchestrator <-> services: checkout durations min {:.2?}, \
         p50 {:.2?}, p90 {:.2?}, max {:.2?}; steps retried: {retried}; {:?}",
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0),
        outcomes(&checkouts)
    );
    assert_completed_or_undone(&checkouts);
    // Create order, charge, reserve stock, create shipment, confirm: each a round trip
    // through the delay, one after the other.
    for c in checkouts
        .iter()
        .filter(|c| c.status() == pb::CheckoutStatus::Completed)
    {
        let took = took(c).expect("a completed checkout has its times");
        assert!(
            took >= 5 * 2 * EACH_WAY,
            "{} completed in {took:?}: its calls did not go through the delay",
            c.checkout_id
        );
    }
}

/// inventory-svc cut off from its database (both ways, Postgres itself up, every other
/// service still reaching it) for 12 s amid checkouts: its callers get UNAVAILABLE
/// within the pool's acquire timeout, not a hang, and its service reports NOT_SERVING
/// while the process stays SERVING (alive); once healed it serves again, SERVING, the
/// same process, and every checkout ends with every invariant holding.
#[tokio::test]
async fn a_service_cut_off_from_its_database_answers_unavailable_and_recovers_without_a_restart() {
    let Some(hosts) = hosts() else { return };
    let (stack, mut clients) = stack_on(&hosts, &[("DBCUT", 500, 100)]).await;
    // Slow charges keep checkouts in flight when the cut comes; more arrive during it.
    let fault = "svc=payment-svc,method=Charge,before_ms=1000";
    let calls = place_spread(
        &clients,
        "DBCUT",
        16,
        Duration::from_millis(400),
        Some(fault),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    hosts
        .partition(INVENTORY, Host::Postgres)
        .expect("the partition");
    let cut = Instant::now();

    let mut inventory = clients.inventory.clone();
    let mut request = tonic::Request::new(inventory::GetStockRequest {
        sku: "DBCUT".into(),
    });
    request.set_timeout(Duration::from_secs(20));
    let refused = inventory
        .get_stock(request)
        .await
        .expect_err("no database, no stock level");
    let answered = cut.elapsed();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        answered < Duration::from_secs(10),
        "UNAVAILABLE only after {answered:?}"
    );
    // Its service says it cannot work; the process says it is alive (no restart).
    let inventory_health = stack.channel(Svc::Inventory);
    let not_serving = health_becomes(
        inventory_health.clone(),
        INVENTORY_SERVICE,
        ServingStatus::NotServing,
        Duration::from_secs(10),
    )
    .await
    .map(|_| cut.elapsed())
    .expect("inventory-svc reports NOT_SERVING without its database");
    assert_eq!(
        health_of(inventory_health.clone(), "").await,
        ServingStatus::Serving,
        "the process is alive"
    );
    eprintln!(
        "inventory-svc | postgres: GetStock answered UNAVAILABLE {answered:?} after the cut; \
         its service NOT_SERVING {not_serving:?} after"
    );

    tokio::time::sleep(Duration::from_secs(12).saturating_sub(cut.elapsed())).await;
    hosts.heal().expect("the heal");
    let healed = Instant::now();
    let mut served_again = None;
    while healed.elapsed() < Duration::from_secs(60) {
        let mut request = tonic::Request::new(inventory::GetStockRequest {
            sku: "DBCUT".into(),
        });
        request.set_timeout(Duration::from_secs(10));
        if inventory.get_stock(request).await.is_ok() {
            served_again = Some(healed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let served_again = served_again.expect("inventory-svc serves again after the heal");
    let serving = health_becomes(
        inventory_health,
        INVENTORY_SERVICE,
        ServingStatus::Serving,
        Duration::from_secs(5),
    )
    .await;
    assert!(serving.is_some(), "SERVING again after the heal");
    eprintln!("inventory-svc served again {served_again:?} after the heal, not restarted");
    let checkouts = every_checkout_ends(&mut clients, calls, ("DBCUT", 100)).await;
    eprintln!(
        "every checkout ended {:?} after the heal: {:?}",
        healed.elapsed(),
        outcomes(&checkouts)
    );
    assert_completed_or_undone(&checkouts);
}

/// Requests from the orchestrator reach inventory-svc, its answers to the orchestrator
/// are lost, for 5 s, while checkouts reach ReserveStock: inventory reserves and its
/// answer never arrives, the orchestrator tries again with the same key and, past the
/// step's deadline, releases by that key. Each checkout holds at most one reservation,
/// and only a completed one keeps it.
#[tokio::test]
async fn answers_lost_from_inventory_to_the_orchestrator_still_give_one_reservation_per_checkout() {
    let Some(hosts) = hosts() else { return };
    let (_stack, mut clients) = stack_on(&hosts, &[("ASYM", 500, 100)]).await;
    // A first checkout, so that the orchestrator's connection to inventory-svc is up:
    // a one-way cut lets no new connection open (the SYN-ACK is lost).
    let warm = place_until_accepted(
        &clients,
        place("ASYM-warm", "tok_visa", "FR", &[("ASYM", 1)]),
        None,
    )
    .await;
    assert_eq!(warm.status(), pb::CheckoutStatus::Completed, "{warm:#?}");
    // Held 1.5 s at their charge, so that all of them reach ReserveStock under the cut.
    let fault = "svc=payment-svc,method=Charge,before_ms=1500";
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let clients = clients.clone();
            tokio::spawn(async move {
                let message = place(&format!("ASYM-{i}"), "tok_visa", "FR", &[("ASYM", 1)]);
                place_until_accepted(&clients, message, Some(fault)).await
            })
        })
        .collect();
    // Every checkout recorded means every cart priced (inventory answered that).
    wait_recorded(&mut clients, 9).await;
    hosts
        .partition_one_way(INVENTORY, ORCHESTRATOR)
        .expect("the one-way partition");
    tokio::time::sleep(Duration::from_secs(5)).await;
    hosts.heal().expect("the heal");
    let healed = Instant::now();
    for call in join_all(calls).await {
        call.expect("the client task");
    }
    let checkouts = all_terminal(&mut clients).await;
    eprintln!(
        "inventory -> orchestrator lost for 5 s: every checkout ended {:?} after the heal: {:?}",
        healed.elapsed(),
        outcomes(&checkouts)
    );
    assert_eq!(checkouts.len(), 9, "one checkout per key");
    let retried = checkouts
        .iter()
        .filter(|c| {
            c.steps
                .iter()
                .any(|s| s.name == "reserve_stock" && s.attempts > 1)
        })
        .count();
    assert!(
        retried > 0,
        "no ReserveStock was retried: the cut was not felt"
    );
    assert_completed_or_undone(&checkouts);
    // At most one reservation per order (a unique index says so too), none left held
    // by a cancelled checkout, and the units held are exactly the completed ones'.
    assert_invariants(&mut clients, &checkouts, &[("ASYM", 100)]).await;
}

/// Choreographed: payment-svc loses the broker for 20 s (both ways) while checkouts
/// arrive. Its consumer gets nothing and its outbox keeps what it would publish; the
/// checkouts wait at their charge; after the heal the flow resumes by itself and every
/// checkout completes, each charged once.
#[tokio::test]
async fn choreographed_checkouts_wait_out_a_service_cut_off_from_the_broker() {
    let Some(hosts) = hosts() else { return };
    let options = StackOptions {
        hosts: Some(hosts.clone()),
        ..StackOptions::default()
    };
    let (_stack, mut clients) = stack_with_options(options, &[("EVENT", 500, 100)]).await;
    let choreographed = |key: String| {
        place_in(
            pb::CoordinationMode::Choreographed,
            &key,
            "tok_visa",
            "FR",
            &[("EVENT", 1)],
        )
    };
    join_all((0..6).map(|i| place_briefly(&clients, choreographed(format!("before-{i}"))))).await;
    hosts.partition(PAYMENT, Host::Nats).expect("the partition");
    let cut = Instant::now();
    let during =
        join_all((0..6).map(|i| place_briefly(&clients, choreographed(format!("during-{i}")))))
            .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    for placed in &during {
        let c = get_checkout(&mut clients, &placed.checkout_id).await;
        assert_eq!(
            c.status(),
            pb::CheckoutStatus::Running,
            "a checkout went on without payment-svc's events: {c:#?}"
        );
    }
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(cut.elapsed())).await;
    hosts.heal().expect("the heal");
    let healed = Instant::now();
    let checkouts = all_terminal(&mut clients).await;
    eprintln!(
        "payment-svc | nats, 20 s: every choreographed checkout ended {:?} after the heal",
        healed.elapsed()
    );
    assert_eq!(checkouts.len(), 12, "one checkout per key");
    assert!(
        checkouts
            .iter()
            .all(|c| c.status() == pb::CheckoutStatus::Completed),
        "{:?}",
        outcomes(&checkouts)
    );
    assert_invariants(&mut clients, &checkouts, &[("EVENT", 100)]).await;
}

/// The helpers cut what they say and `heal` undoes it, seen by TCP connects to a
/// listener on the broker's host (a real nats-server there) from another host and from
/// the test itself; and the delay delays what it says, each way, without piling up, seen
/// by PINGs to that broker timed inside the client's host.
#[tokio::test]
async fn the_fault_helpers_cut_what_they_say_and_heal_undoes_it() {
    let Some(hosts) = hosts() else { return };
    let log = std::env::temp_dir().join(format!("shop-hosts-{}.log", std::process::id()));
    let nats = Nats::start_at(hosts.place(Host::Nats), &log, None)
        .await
        .expect("a broker on its host");
    let broker = SocketAddr::new(hosts.ip(Host::Nats), nats.port());
    let from_test =
        || std::net::TcpStream::connect_timeout(&broker, Duration::from_secs(1)).is_ok();
    let from = |host: Host| {
        hosts
            .place(host)
            .command("timeout")
            .args(["1", "bash", "-c"])
            .arg(format!(
                "exec 3<>/dev/tcp/{}/{}",
                broker.ip(),
                broker.port()
            ))
            .status()
            .expect("bash runs")
            .success()
    };
    assert!(
        from_test() && from(PAYMENT) && from(INVENTORY),
        "all linked"
    );
    hosts.partition(PAYMENT, Host::Nats).expect("the partition");
    assert!(!from(PAYMENT), "payment-svc still reaches the broker");
    assert!(
        from(INVENTORY) && from_test(),
        "the partition cut others too"
    );
    hosts.heal().expect("the heal");
    assert!(
        from(PAYMENT),
        "healed, payment-svc reaches the broker again"
    );
    // Answers lost: the connect's SYN-ACK never comes back.
    hosts
        .partition_one_way(Host::Nats, PAYMENT)
        .expect("the one-way partition");
    assert!(
        !from(PAYMENT) && from(INVENTORY),
        "one way, from the broker"
    );
    hosts.heal().expect("the heal");
    hosts.isolate(Host::Nats).expect("the isolation");
    assert!(
        !from(PAYMENT) && !from(INVENTORY) && !from_test(),
        "isolated"
    );
    hosts.heal().expect("the heal");
    assert!(from(PAYMENT) && from_test(), "healed");

    // A delay: two PINGs 20 ms apart from payment-svc's host, each answered by a PONG.
    const EACH_WAY: Duration = Duration::from_millis(200);
    let gap = Duration::from_millis(20);
    let (before, _) = ping_twice(&hosts, PAYMENT, broker, gap);
    assert!(before < EACH_WAY / 2, "slow before any delay: {before:?}");
    hosts
        .delay(PAYMENT, Host::Nats, EACH_WAY)
        .expect("the delay");
    let (first, second) = ping_twice(&hosts, PAYMENT, broker, gap);
    assert!(
        first >= 2 * EACH_WAY,
        "delayed less than each way: {first:?}"
    );
    // Stamped on arrival: the second waits the delay once, not behind the first's wait
    // (which would make it 3 × EACH_WAY).
    assert!(
        second < 2 * EACH_WAY + gap + EACH_WAY / 2,
        "the delays piled up: {second:?}"
    );
    let (beside, _) = ping_twice(&hosts, INVENTORY, broker, gap);
    assert!(
        beside < EACH_WAY / 2,
        "another host delayed too: {beside:?}"
    );
    hosts.heal().expect("the heal");
    let (healed, _) = ping_twice(&hosts, PAYMENT, broker, gap);
    eprintln!(
        "a PING's round trip: {before:?} before the delay; delayed {EACH_WAY:?} each way \
         {first:?}, the next {second:?}; from another host meanwhile {beside:?}; after the \
         heal {healed:?}"
    );
    assert!(
        healed < EACH_WAY / 2,
        "still delayed after the heal: {healed:?}"
    );
    drop(nats);
    let _ = std::fs::remove_file(log);
}

/// From `host`, a new connection to the NATS server at `broker` (plaintext), then two
/// PINGs `gap` apart: how long the first took to be answered, and the second from when
/// the first was sent. Timed by bash itself (`EPOCHREALTIME`), so starting the process
/// in the namespace is not counted.
fn ping_twice(
    hosts: &Hosts,
    host: Host,
    broker: SocketAddr,
    gap: Duration,
) -> (Duration, Duration) {
    let script = format!(
        "exec 3<>/dev/tcp/{ip}/{port} && read -r info <&3 && \
         printf 'CONNECT {{\"verbose\":false}}\\r\\n' >&3 && \
         sent=$EPOCHREALTIME && printf 'PING\\r\\n' >&3 && sleep {gap} && \
         printf 'PING\\r\\n' >&3 && read -r one <&3 && first=$EPOCHREALTIME && \
         read -r two <&3 && second=$EPOCHREALTIME && echo \"$one $two $sent $first $second\"",
        ip = broker.ip(),
        port = broker.port(),
        gap = gap.as_secs_f64(),
    );
    let output = hosts
        .place(host)
        .command("timeout")
        .args(["5", "bash", "-c", &script])
        .output()
        .expect("bash runs");
    let out = String::from_utf8_lossy(&output.stdout);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert!(
        output.status.success() && words.len() == 5 && words[..2].iter().all(|w| *w == "PONG"),
        "two PINGs from {}: {out:?} {}",
        host.name(),
        String::from_utf8_lossy(&output.stderr)
    );
    let at = |word: &str| word.parse::<f64>().expect("EPOCHREALTIME");
    let since_sent = |word| Duration::from_secs_f64(at(word) - at(words[2]));
    (since_sent(words[3]), since_sent(words[4]))
}

/// inventory-svc's gRPC service, as its health service names it.
const INVENTORY_SERVICE: &str = "shop.inventory.v1.InventoryService";

/// What the health service at `channel` says of `service` (`""`: the process), UNKNOWN
/// when it gives no answer within 2 s.
async fn health_of(channel: Channel, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(channel);
    let check = health.check(HealthCheckRequest {
        service: service.into(),
    });
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(reply)) => reply.into_inner().status(),
        _ => ServingStatus::Unknown,
    }
}

/// Asks every 100 ms until `service` at `channel` says `want`; how long that took, or
/// `None` past `within`.
async fn health_becomes(
    channel: Channel,
    service: &str,
    want: ServingStatus,
    within: Duration,
) -> Option<Duration> {
    let asked = Instant::now();
    while asked.elapsed() < within {
        if health_of(channel.clone(), service).await == want {
            return Some(asked.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Waits (up to 30 s) until `count` checkouts are recorded.
async fn wait_recorded(clients: &mut Clients, count: usize) {
    for _ in 0..300 {
        let listed = clients
            .checkout
            .list_checkouts(pb::ListCheckoutsRequest {
                page_size: 100,
                ..pb::ListCheckoutsRequest::default()
            })
            .await
            .expect("ListCheckouts answers")
            .into_inner()
            .checkouts;
        if listed.len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} checkouts recorded after 30 s");
}

/// How many checkouts ended how: status and failure reason.
fn outcomes(checkouts: &[pb::Checkout]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for c in checkouts {
        let key = format!("{} {}", c.status().as_str_name(), c.failure_reason);
        *counts.entry(key.trim().to_owned()).or_default() += 1;
    }
    counts
}
