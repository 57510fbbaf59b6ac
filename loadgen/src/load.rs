//! The load driver. Each request is a `PlaceOrder` with key `<run>-<n>` for customer
//! `<run>`, so the checker can find every checkout a run made, even those whose answer
//! was lost.
//!
//! Over 400 lines with its tests: the run's pacing, its watchers and listers and the
//! report share one set of counters, kept in one place.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use e2e::clients::Clients;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use shop_proto::common::v1 as common;
use shop_proto::{checkout::v1 as pb, inventory::v1 as inventory};
use tonic::{Code, Request};

use crate::{bare, interrupt::Stop, progress::Live};

/// Shares of requests meant to end otherwise than COMPLETED, and of injected faults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Mix {
    pub declined: f64,
    pub out_of_stock: f64,
    pub undeliverable: f64,
    /// Share of requests whose charge fails UNAVAILABLE once (retried).
    pub transient: f64,
    /// Share of requests whose reservation succeeds after the caller's attempt timeout.
    pub late: f64,
    /// The `after_ms` of late successes (above the orchestrator's attempt timeout).
    pub late_ms: u64,
    /// How the checkouts are coordinated.
    pub modes: Modes,
}

/// Which coordination mode the requests of a run use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modes {
    /// Every checkout orchestrated (the front door's default).
    #[default]
    Orchestrated,
    /// Every checkout choreographed (events only).
    Choreographed,
    /// Alternate: even requests orchestrated, odd ones choreographed.
    Both,
}

impl Modes {
    /// The mode of the `n`th request.
    pub fn of(self, n: u64) -> pb::CoordinationMode {
        match self {
            Modes::Orchestrated => pb::CoordinationMode::Orchestrated,
            Modes::Choreographed => pb::CoordinationMode::Choreographed,
            Modes::Both if n.is_multiple_of(2) => pb::CoordinationMode::Orchestrated,
            Modes::Both => pb::CoordinationMode::Choreographed,
        }
    }
}

/// How to drive the load.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub run_id: String,
    pub concurrency: usize,
    /// Requests per second (open loop); `None` is closed loop at `concurrency`.
    pub rate: Option<f64>,
    pub duration: Option<Duration>,
    pub count: Option<u64>,
    pub mix: Mix,
    /// Deadline of each PlaceOrder.
    pub deadline: Duration,
    /// Retry PlaceOrder (same key) while the front door is down, like a real client.
    pub retry_unavailable: bool,
    /// Print a progress line every second on stderr.
    pub progress: bool,
    /// Counts the requests made (`made`), for a caller's own progress line.
    pub live: Arc<Live>,
    /// Stops issuing requests, and abandons the ones in flight, when set.
    pub stop: Stop,
}

impl LoadConfig {
    /// A closed loop of `concurrency` checkouts at a time, for `duration` or `count`
    /// (whichever ends first), with a 10 s PlaceOrder deadline, no retries and a progress
    /// line: the usual run, to adjust field by field.
    pub fn closed_loop(
        run_id: &str,
        concurrency: usize,
        duration: Option<Duration>,
        count: Option<u64>,
        mix: Mix,
    ) -> Self {
        Self {
            run_id: run_id.to_owned(),
            concurrency,
            rate: None,
            duration,
            count,
            mix,
            deadline: Duration::from_secs(10),
            retry_unavailable: false,
            progress: true,
            live: Arc::default(),
            stop: Stop::default(),
        }
    }
}

/// What a run set up and made: enough for the checker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    /// `(sku, units stocked)` of the skus this run created.
    pub skus: Vec<(String, i64)>,
    /// Requests issued (keys `<run>-0` .. `<run>-<issued-1>`).
    pub issued: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// The final report of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub run_id: String,
    pub concurrency: usize,
    pub requests: u64,
    pub seconds: f64,
    pub throughput: f64,
    pub latency_ms: Latency,
    /// By checkout status (and failure reason).
    pub outcomes: BTreeMap<String, u64>,
    /// Failed calls by gRPC code.
    pub errors: BTreeMap<String, u64>,
}

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The human-readable form.
    pub fn render(&self) -> String {
        let l = &self.latency_ms;
        let mut text = format!(
            "run {}: {} requests in {:.1} s at concurrency {} = {:.1} checkouts/s\n\
             latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}\n",
            self.run_id,
            self.requests,
            self.seconds,
            self.concurrency,
            self.throughput,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean
        );
        text.push_str("outcomes:");
        for (outcome, n) in &self.outcomes {
            text.push_str(&format!("  {outcome} {n}"));
        }
        text.push_str("\nerrors:");
        if self.errors.is_empty() {
            text.push_str("  none");
        }
        for (code, n) in &self.errors {
            text.push_str(&format!("  {code} {n}"));
        }
        text.push('\n');
        text
    }
}

/// Creates this run's skus: plenty of stock for normal lines, none for the out-of-stock
/// share, so outcomes follow the mix.
pub async fn setup(clients: &mut Clients, run_id: &str) -> Result<RunState, tonic::Status> {
    let skus = vec![
        (format!("{run_id}-A"), 1_000_000),
        (format!("{run_id}-B"), 1_000_000),
        (format!("{run_id}-NONE"), 0),
    ];
    for (i, (sku, units)) in skus.iter().enumerate() {
        clients
            .inventory
            .upsert_product(inventory::UpsertProductRequest {
                sku: sku.clone(),
                name: format!("Load test item {i}"),
                unit_price: Some(common::Money {
                    amount_minor: 500 + 250 * i as i64,
                    currency: "EUR".into(),
                }),
            })
            .await?;
        clients
            .inventory
            .set_stock(inventory::SetStockRequest {
                sku: sku.clone(),
                quantity: *units,
            })
            .await?;
    }
    Ok(RunState {
        run_id: run_id.to_owned(),
        skus,
        issued: 0,
    })
}

/// A number in [0, 1) from `n` and a salt, the same every run (splitmix64).
pub(crate) fn unit(n: u64, salt: u64) -> f64 {
    let mut z = n.wrapping_add(salt).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The `n`th request of a run, with the fault metadata it carries.
pub fn request(state: &RunState, mix: &Mix, n: u64) -> (pb::PlaceOrderRequest, Option<String>) {
    let pick = unit(n, 1);
    let (mut token, mut country) = ("tok_visa", "FR");
    let mut items = vec![pb::LineItem {
        sku: state.skus[0].0.clone(),
        quantity: 1 + (n % 3) as i32,
    }];
    if n.is_multiple_of(2) {
        items.push(pb::LineItem {
            sku: state.skus[1].0.clone(),
            quantity: 1,
        });
    }
    let mut edge = mix.declined;
    if pick < edge {
        token = "tok_chargeDeclined";
    } else if pick < {
        edge += mix.out_of_stock;
        edge
    } {
        items.push(pb::LineItem {
            sku: state.skus[2].0.clone(),
            quantity: 1,
        });
    } else if pick < edge + mix.undeliverable {
        country = "AQ";
    }
    let mut faults = Vec::new();
    if unit(n, 2) < mix.transient {
        faults.push("svc=payment-svc,method=Charge,code=unavailable,times=1".to_owned());
    }
    if unit(n, 3) < mix.late {
        faults.push(format!(
            "svc=inventory-svc,method=ReserveStock,after_ms={},times=1",
            mix.late_ms
        ));
    }
    let message = pb::PlaceOrderRequest {
        mode: mix.modes.of(n).into(),
        idempotency_key: format!("{}-{n}", state.run_id),
        customer_id: state.run_id.clone(),
        items,
        payment_token: token.into(),
        shipping_address: Some(common::Address {
            name: "Load Test".into(),
            line1: "1 Benchmark Way".into(),
            line2: String::new(),
            city: "Lyon".into(),
            postal_code: "69001".into(),
            country: country.into(),
        }),
    };
    (message, (!faults.is_empty()).then(|| faults.join(";")))
}

/// How long a closed-loop worker waits before its next request once a call answered
/// UNAVAILABLE (the front door or a service down, or not reachable): doubling from
/// [`Backoff::FIRST`] to [`Backoff::MAX`], and back to none at the first other answer.
/// Without it a worker re-sent at once, as fast as a refused connection comes back:
/// 354,361 calls in 10 s against a stopped orchestrator, which measured nothing and
/// would have hammered it the moment it came back. Other errors (RESOURCE_EXHAUSTED from
/// a shedding server, a deadline) are what a load test is there to see, so they do not
/// slow it down.
#[derive(Debug, Default)]
struct Backoff {
    /// The wait after the last UNAVAILABLE; zero while calls get other answers.
    last: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(2);

    /// The wait before the next request, after a call that ended in `failed`.
    fn after(&mut self, failed: Option<Code>) -> Option<Duration> {
        if failed != Some(Code::Unavailable) {
            self.last = Duration::ZERO;
            return None;
        }
        self.last = (self.last * 2).clamp(Self::FIRST, Self::MAX);
        Some(self.last)
    }
}

#[derive(Debug)]
struct Tally {
    latency: Histogram<u64>,
    outcomes: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

/// Whom the load calls for each checkout.
#[derive(Debug, Clone)]
enum Target {
    /// PlaceOrder at the front door: the saga.
    FrontDoor(Box<Clients>),
    /// The same calls straight to the services: the floor ([`crate::bare`]).
    Bare(Box<bare::Services>),
}

impl Target {
    /// One checkout: its outcome (`COMPLETED`, `CANCELLED:<reason>`, ...) or the code of
    /// the call that failed.
    async fn checkout(
        &mut self,
        message: pb::PlaceOrderRequest,
        fault: Option<&str>,
        config: &LoadConfig,
    ) -> Result<String, Code> {
        match self {
            Self::FrontDoor(clients) => {
                let checkout = place(clients, message, fault, config).await?;
                let mut outcome = checkout
                    .status()
                    .as_str_name()
                    .trim_start_matches("CHECKOUT_STATUS_")
                    .to_owned();
                if !checkout.failure_reason.is_empty() {
                    outcome = format!("{outcome}:{}", checkout.failure_reason);
                }
                Ok(outcome)
            }
            Self::Bare(services) => {
                services.checkout(&message).await?;
                Ok("COMPLETED".to_owned())
            }
        }
    }
}

/// Drives PlaceOrder at the front door; `state.issued` counts the requests made.
pub async fn run(
    clients: &Clients,
    config: &LoadConfig,
    state: &mut RunState,
) -> anyhow::Result<Report> {
    drive(Target::FrontDoor(Box::new(clients.clone())), config, state).await
}

/// Drives the floor: each checkout's calls straight to the services ([`crate::bare`]),
/// with the same requests, concurrency and report as [`run`].
pub async fn run_bare(
    services: &bare::Services,
    config: &LoadConfig,
    state: &mut RunState,
) -> anyhow::Result<Report> {
    drive(Target::Bare(Box::new(services.clone())), config, state).await
}

async fn drive(
    target: Target,
    config: &LoadConfig,
    state: &mut RunState,
) -> anyhow::Result<Report> {
    let tally = Arc::new(Mutex::new(Tally {
        latency: Histogram::new_with_bounds(1, 120_000_000, 3)?,
        outcomes: BTreeMap::new(),
        errors: BTreeMap::new(),
    }));
    let next = Arc::new(AtomicU64::new(0));
    let live = config.live.clone();
    let started = Instant::now();
    let stop_at = config.duration.map(|d| started + d);
    let limit = config.count.unwrap_or(u64::MAX);
    let shared = Arc::new((state.clone(), config.clone()));

    let progress = config.progress.then(|| {
        let (tally, live) = (tally.clone(), live.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = live.made.load(Ordering::Relaxed);
                let (p99, errors) = {
                    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
                    (
                        t.latency.value_at_quantile(0.99) as f64 / 1000.0,
                        t.errors.values().sum::<u64>(),
                    )
                };
                let secs = started.elapsed().as_secs_f64();
                eprint!(
                    "\r[{secs:5.1}s] {n} done, {:.1}/s, p99 {p99:.1} ms, {errors} errors   ",
                    n as f64 / secs
                );
            }
        })
    });

    let one = {
        let (tally, live, shared) = (tally.clone(), live.clone(), shared.clone());
        move |n: u64, intended: Instant| {
            let (tally, live, shared, mut target) =
                (tally.clone(), live.clone(), shared.clone(), target.clone());
            async move {
                let (state, config) = &*shared;
                let (message, fault) = request(state, &config.mix, n);
                let result = tokio::select! {
                    result = target.checkout(message, fault.as_deref(), config) => result,
                    () = config.stop.stopped() => Err(Code::Cancelled),
                };
                let micros = u64::try_from(intended.elapsed().as_micros()).unwrap_or(u64::MAX);
                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                let _ = t.latency.record(micros.max(1));
                let failed = match result {
                    Ok(outcome) => {
                        *t.outcomes.entry(outcome).or_default() += 1;
                        None
                    }
                    Err(code) => {
                        *t.errors
                            .entry(platform::metrics::code_name(code))
                            .or_default() += 1;
                        Some(code)
                    }
                };
                live.made.fetch_add(1, Ordering::Relaxed);
                failed
            }
        }
    };

    match config.rate {
        None => {
            let workers: Vec<_> = (0..config.concurrency.max(1))
                .map(|_| {
                    let (next, one, stop) = (next.clone(), one.clone(), config.stop.clone());
                    tokio::spawn(async move {
                        let mut backoff = Backoff::default();
                        loop {
                            if stop_at.is_some_and(|at| Instant::now() >= at) || stop.is_stopped() {
                                break;
                            }
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            if n >= limit {
                                break;
                            }
                            let failed = one(n, Instant::now()).await;
                            if let Some(wait) = backoff.after(failed) {
                                let until = stop_at.map_or(wait, |at| {
                                    wait.min(at.saturating_duration_since(Instant::now()))
                                });
                                tokio::select! {
                                    () = tokio::time::sleep(until) => {}
                                    () = stop.stopped() => {}
                                }
                            }
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.await?;
            }
        }
        Some(rate) => {
            let permits = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
            let mut tasks = Vec::new();
            loop {
                let intended = ticker.tick().await.into_std();
                if stop_at.is_some_and(|at| Instant::now() >= at) || config.stop.is_stopped() {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    break;
                }
                let permit = permits.clone().acquire_owned().await?;
                let one = one.clone();
                // Latency counts from the scheduled start: no coordinated omission. The
                // ticker paces an open loop, so a failure needs no backoff of its own.
                tasks.push(tokio::spawn(async move {
                    let _failed = one(n, intended).await;
                    drop(permit);
                }));
            }
            for task in tasks {
                task.await?;
            }
        }
    }
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
    let seconds = started.elapsed().as_secs_f64();
    state.issued = next.load(Ordering::Relaxed).min(limit);
    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    let ms = |q: f64| t.latency.value_at_quantile(q) as f64 / 1000.0;
    let requests = live.made.load(Ordering::Relaxed);
    Ok(Report {
        run_id: state.run_id.clone(),
        concurrency: config.concurrency,
        requests,
        seconds,
        throughput: requests as f64 / seconds,
        latency_ms: Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: t.latency.max() as f64 / 1000.0,
            mean: t.latency.mean() / 1000.0,
        },
        outcomes: t.outcomes.clone(),
        errors: t.errors.clone(),
    })
}

/// One PlaceOrder; while the front door is down, the same key again (if configured).
async fn place(
    clients: &mut Clients,
    message: pb::PlaceOrderRequest,
    fault: Option<&str>,
    config: &LoadConfig,
) -> Result<pb::Checkout, Code> {
    let give_up = Instant::now() + config.deadline * 10;
    loop {
        let mut request = Request::new(message.clone());
        request.set_timeout(config.deadline);
        if let Some(fault) = fault.and_then(|f| f.parse().ok()) {
            request.metadata_mut().insert("x-fault", fault);
        }
        match clients.checkout.place_order(request).await {
            Ok(reply) => return reply.into_inner().checkout.ok_or(Code::Internal),
            Err(status)
                if config.retry_unavailable
                    && matches!(
                        status.code(),
                        Code::Unavailable | Code::Unknown | Code::Cancelled
                    )
                    && Instant::now() < give_up =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => return Err(status.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RunState {
        RunState {
            run_id: "r".into(),
            skus: vec![("r-A".into(), 10), ("r-B".into(), 10), ("r-NONE".into(), 0)],
            issued: 0,
        }
    }

    #[test]
    fn unavailable_backs_off_doubling_to_a_ceiling_and_other_answers_reset_it() {
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..8)
            .filter_map(|_| backoff.after(Some(Code::Unavailable)))
            .collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            waits,
            [
                ms(50),
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(2000),
                ms(2000)
            ]
        );
        assert_eq!(backoff.after(None), None, "a checkout went through");
        assert_eq!(backoff.after(Some(Code::Unavailable)), Some(ms(50)));
        assert_eq!(
            backoff.after(Some(Code::ResourceExhausted)),
            None,
            "shedding is what a load test measures"
        );
        assert_eq!(backoff.after(Some(Code::Unavailable)), Some(ms(50)));
    }

    #[tokio::test]
    async fn a_closed_loop_against_a_stopped_front_door_backs_off_instead_of_spinning() {
        // Nothing listens there: every call fails UNAVAILABLE at once.
        let port = platform::ports::free_port().expect("a port");
        let url = format!("http://127.0.0.1:{port}");
        let urls = e2e::clients::Urls {
            orchestrator: url.clone(),
            order: url.clone(),
            payment: url.clone(),
            inventory: url.clone(),
            shipping: url,
        };
        let clients = Clients::at(
            &urls,
            &platform::security::Security::DevInsecure,
            platform::security::token::AttachToken::none(),
        )
        .expect("clients");
        let mut config = LoadConfig::closed_loop(
            "stopped",
            4,
            Some(Duration::from_secs(2)),
            None,
            Mix::default(),
        );
        config.progress = false;
        let report = run(&clients, &config, &mut state())
            .await
            .expect("a report");
        assert_eq!(report.errors.get("UNAVAILABLE"), Some(&report.requests));
        // Each worker: 50 + 100 + 200 + 400 + 800 ms of waits fill two seconds after
        // six calls; without the backoff it made thousands.
        assert!(
            (4..=40).contains(&report.requests),
            "{} calls in 2 s",
            report.requests
        );
    }

    #[test]
    fn the_mix_is_followed_and_repeatable() {
        let mix = Mix {
            declined: 0.1,
            out_of_stock: 0.1,
            undeliverable: 0.1,
            transient: 0.2,
            late: 0.0,
            late_ms: 0,
            modes: Modes::Both,
        };
        let (mut declined, mut oos, mut aq, mut faults) = (0, 0, 0, 0);
        let mut choreographed = 0;
        for n in 0..10_000 {
            let (req, fault) = request(&state(), &mix, n);
            declined += usize::from(req.payment_token == "tok_chargeDeclined");
            oos += usize::from(req.items.iter().any(|i| i.sku == "r-NONE"));
            aq += usize::from(
                req.shipping_address
                    .as_ref()
                    .is_some_and(|a| a.country == "AQ"),
            );
            faults += usize::from(fault.is_some());
            choreographed += usize::from(req.mode() == pb::CoordinationMode::Choreographed);
            assert_eq!(req.idempotency_key, format!("r-{n}"));
        }
        for (count, share) in [
            (declined, 0.1),
            (oos, 0.1),
            (aq, 0.1),
            (faults, 0.2),
            (choreographed, 0.5),
        ] {
            let got = count as f64 / 10_000.0;
            assert!((got - share).abs() < 0.02, "{got} vs {share}");
        }
        assert_eq!(request(&state(), &mix, 7), request(&state(), &mix, 7));
    }
}
