//! Reads with limits, against real processes: WatchCheckout streams by the thousand and
//! lists of the largest page, beside a closed-loop load of checkouts. The streams are
//! woken by the change feed (no poll per stream), counted against their caps, and the
//! reads use a pool of their own, so no read load costs a driver its lease or a
//! PlaceOrder its deadline. Latency is measured by `loadgen`, not asserted here.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use e2e::{
    Svc,
    clients::Clients,
    scenario::{options, place, place_until_accepted, request, stack_with_options},
    stack::Stack,
};
use futures::{FutureExt, future::join_all};
use platform::{reason::Reason, security::connect::FrontDoor};
use shop_proto::checkout::v1::{self as pb, checkout_service_client::CheckoutServiceClient};
use tonic::Code;

/// Streams one caller opens (at its cap), and another caller opens (filling the
/// replica's cap).
const FIRST_CALLER: usize = 1000;
const SECOND_CALLER: usize = 500;
/// Streams per HTTP/2 connection: below the server's limit of 256 calls at once on one.
const PER_CONNECTION: usize = 200;

/// 1,500 open streams (two callers, each at its cap or the replica's) and 200 parallel
/// lists of 100 rows, all beside 16 clients placing checkouts one after another for
/// 15 s: every PlaceOrder answers within its deadline, no driver loses its lease, and the
/// stream past each cap is refused RESOURCE_EXHAUSTED with the reason naming the cap.
#[tokio::test]
async fn streams_and_large_lists_beside_load_cost_no_lease_and_no_deadline() {
    let mut options = options();
    options.orchestrator_env.extend(
        [
            // The production pool size, which the reads once exhausted.
            ("DATABASE_MAX_CONNECTIONS", "10"),
            ("MAX_WATCH_STREAMS", "1500"),
            ("MAX_WATCH_STREAMS_PER_CALLER", "1000"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let (stack, clients) = stack_with_options(options, &[("LIMIT", 100, 1_000_000)]).await;
    let parked = parked_checkout(&clients).await;

    // The streams: each replays the parked checkout's history, then stays open.
    let mut streams = open_streams(&stack, "watcher-a", &parked, FIRST_CALLER).await;
    streams.extend(open_streams(&stack, "watcher-b", &parked, SECOND_CALLER).await);
    assert_eq!(streams.len(), FIRST_CALLER + SECOND_CALLER);
    let refused = |subject: &str| {
        let mut client = watcher(&stack, subject);
        let parked = parked.clone();
        async move {
            client
                .watch_checkout(pb::WatchCheckoutRequest {
                    checkout_id: parked,
                })
                .await
                .expect_err("a stream past the cap is refused")
        }
    };
    let own_cap = refused("watcher-a").await;
    assert_eq!(own_cap.code(), Code::ResourceExhausted, "{own_cap:?}");
    assert_eq!(
        Reason::of(&own_cap),
        Some(Reason::WatchStreamsPerCallerExhausted)
    );
    let replica_cap = refused("watcher-c").await;
    assert_eq!(
        replica_cap.code(),
        Code::ResourceExhausted,
        "{replica_cap:?}"
    );
    assert_eq!(
        Reason::of(&replica_cap),
        Some(Reason::WatchStreamsExhausted)
    );

    // A page larger than the cap is refused, naming the field.
    let too_large = clients
        .checkout
        .clone()
        .list_checkouts(pb::ListCheckoutsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect_err("500 rows is past the cap");
    assert_eq!(too_large.code(), Code::InvalidArgument);
    assert!(too_large.message().contains("page_size"), "{too_large:?}");

    // The closed loop and the lists, for 15 s.
    let stop = Arc::new(AtomicBool::new(false));
    let placers: Vec<_> = (0..16)
        .map(|worker| tokio::spawn(place_until(clients.clone(), worker, stop.clone())))
        .collect();
    let lists = Arc::new(AtomicU64::new(0));
    let listers: Vec<_> = (0..200)
        .map(|_| tokio::spawn(list_until(clients.clone(), lists.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(15)).await;
    stop.store(true, Ordering::Relaxed);
    let mut placed = 0;
    let mut slowest = Duration::ZERO;
    for worker in join_all(placers).await {
        let (count, slowest_call) = worker
            .expect("the placer")
            .expect("every PlaceOrder answers");
        placed += count;
        slowest = slowest.max(slowest_call);
    }
    for lister in join_all(listers).await {
        lister.expect("the lister");
    }
    eprintln!(
        "{placed} checkouts placed, slowest PlaceOrder {slowest:?}, {} list pages read, \
         beside {} open streams",
        lists.load(Ordering::Relaxed),
        streams.len()
    );
    assert!(placed > 0, "the load placed checkouts");

    // Every stream is still open (the rest of the history read, it waits for the next
    // event): none was cut to make room.
    for stream in &mut streams {
        while let Some(next) = stream.message().now_or_never() {
            assert!(
                next.as_ref().is_ok_and(Option::is_some),
                "a stream ended: {next:?}"
            );
        }
    }
    drop(streams);
    let log = std::fs::read_to_string(
        stack
            .log_dir
            .join(format!("{}.log", Svc::Orchestrator.binary())),
    )
    .expect("the orchestrator's log");
    for lost in ["driver stopped", "fenced by time", "lease on saga"] {
        assert!(
            !log.contains(lost),
            "a driver lost its lease under read load: {}",
            log.lines().find(|l| l.contains(lost)).unwrap_or_default()
        );
    }
}

/// A checkout parked NEEDS_ATTENTION (shipping refuses Antarctica, payment-svc refuses
/// the refund once): it never ends by itself, so streams on it stay open.
async fn parked_checkout(clients: &Clients) -> String {
    let placed = place_until_accepted(
        clients,
        place("limits-parked", "tok_visa", "AQ", &[("LIMIT", 1)]),
        Some("svc=payment-svc,method=Refund,code=failed_precondition,times=1"),
    )
    .await;
    let mut client = clients.checkout.clone();
    for _ in 0..200 {
        let checkout = client
            .get_checkout(pb::GetCheckoutRequest {
                checkout_id: placed.checkout_id.clone(),
                order_id: String::new(),
            })
            .await
            .expect("GetCheckout")
            .into_inner()
            .checkout
            .expect("a checkout");
        if checkout.status() == pb::CheckoutStatus::NeedsAttention {
            return placed.checkout_id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("checkout {} never parked", placed.checkout_id);
}

/// A front-door client of its own connection, as the operator `subject` (operators may
/// watch every checkout; each subject is a caller of its own).
fn watcher(stack: &Stack, subject: &str) -> CheckoutServiceClient<FrontDoor> {
    CheckoutServiceClient::with_interceptor(
        stack.channel(Svc::Orchestrator),
        stack.token(subject, true).expect("a token"),
    )
}

/// `count` streams on `checkout_id` as `subject`, each past its first message (the
/// history), spread over connections of [`PER_CONNECTION`] streams.
async fn open_streams(
    stack: &Stack,
    subject: &str,
    checkout_id: &str,
    count: usize,
) -> Vec<tonic::Streaming<pb::WatchCheckoutResponse>> {
    let mut streams = Vec::with_capacity(count);
    for chunk in 0..count.div_ceil(PER_CONNECTION) {
        let client = watcher(stack, subject);
        let size = PER_CONNECTION.min(count - chunk * PER_CONNECTION);
        let opened = join_all((0..size).map(|_| {
            let mut client = client.clone();
            let checkout_id = checkout_id.to_owned();
            async move {
                let mut stream = client
                    .watch_checkout(pb::WatchCheckoutRequest { checkout_id })
                    .await
                    .expect("a stream within the caps opens")
                    .into_inner();
                stream
                    .message()
                    .await
                    .expect("the history")
                    .expect("at least one event");
                stream
            }
        }))
        .await;
        streams.extend(opened);
    }
    streams
}

/// Places checkouts one after another until `stop`, each with a 10 s deadline; the
/// count and the slowest answer, or the first call that did not answer in time.
async fn place_until(
    clients: Clients,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> Result<(u64, Duration), tonic::Status> {
    let mut checkout = clients.checkout.clone();
    let (mut count, mut slowest) = (0, Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let key = format!("limits-{worker}-{count}");
        let started = Instant::now();
        checkout
            .place_order(request(
                place(&key, "tok_visa", "FR", &[("LIMIT", 1)]),
                None,
                Duration::from_secs(10),
            ))
            .await?;
        slowest = slowest.max(started.elapsed());
        count += 1;
    }
    Ok((count, slowest))
}

/// Reads the newest 100 checkouts (the largest page) again and again until `stop`. A
/// read refused for want of a read connection (UNAVAILABLE) is a read's fate under this
/// load, not a failure; any other error is.
async fn list_until(clients: Clients, pages: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let mut checkout = clients.checkout.clone();
    while !stop.load(Ordering::Relaxed) {
        match checkout
            .list_checkouts(pb::ListCheckoutsRequest {
                page_size: 100,
                ..Default::default()
            })
            .await
        {
            Ok(_) => {
                pages.fetch_add(1, Ordering::Relaxed);
            }
            Err(status) if status.code() == Code::Unavailable => {}
            Err(status) => panic!("ListCheckouts: {status:?}"),
        }
    }
}
