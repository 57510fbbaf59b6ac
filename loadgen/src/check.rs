//! The invariant checker: reads every service back through its public read RPCs and
//! checks docs/CONTRACT.md's invariants for every checkout a run made, plus stock
//! conservation for every sku the run created.
//!
//! It must scale to runs of 100,000 checkouts, so each checkout is read once (from the
//! pages of `ListCheckouts`, not again by `GetCheckout`), only the unfinished ones are read
//! again while waiting, and many checkouts are checked at once over the shared channels
//! (HTTP/2 multiplexes them), each one's four service reads in parallel.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use e2e::{
    clients::Clients,
    invariants::{check_record, check_stock},
};
use futures::{StreamExt, stream};
use shop_proto::{checkout::v1 as pb, order::v1 as order, payment::v1 as payment};
use tonic::Code;

use crate::{interrupt::Stop, load::RunState, progress::Live};

/// Checkouts checked at once: enough to keep both cores and every service busy, few
/// enough not to queue deep on the services' connection pools.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// How long to wait for unfinished checkouts to end.
    pub wait: Duration,
    /// Checkouts checked at once.
    pub concurrency: usize,
}

/// What the checker found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verdict {
    /// Checkouts of the run found through `ListCheckouts`.
    pub checkouts: usize,
    /// Of those, checked against every service (all of them unless `partial`).
    pub checked: usize,
    pub by_status: BTreeMap<String, usize>,
    /// Checkouts still not COMPLETED or CANCELLED when the wait ran out.
    pub stuck: usize,
    /// Seconds from the start of the check until every checkout had ended (none if some
    /// never did).
    pub settled_after_s: Option<f64>,
    /// Wall time of the whole check, waiting included.
    pub seconds: f64,
    /// Interrupted before the end: the counts cover only what was read so far.
    pub partial: bool,
    pub violations: Vec<String>,
}

impl Verdict {
    /// The human-readable form: counts, then one line per violation.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if self.partial {
            text.push_str("PARTIAL (interrupted): ");
        }
        text.push_str(&format!(
            "{} checkouts checked of {} found: {:?}\n",
            self.checked, self.checkouts, self.by_status
        ));
        let settled = self
            .settled_after_s
            .map_or("never".to_owned(), |s| format!("after {s:.1} s"));
        text.push_str(&format!(
            "{} stuck; all ended {settled}; check took {:.1} s\n",
            self.stuck, self.seconds
        ));
        for violation in &self.violations {
            text.push_str(&format!("VIOLATION {violation}\n"));
        }
        text.push_str(&format!("{} violations\n", self.violations.len()));
        text
    }
}

/// The largest `page_size` the shop's list RPCs serve (docs/CONTRACT.md): fewest pages.
const PAGE_SIZE: i32 = 100;

/// Every checkout of customer `run_id`, all pages, counted in `live.found`.
async fn checkouts_of(
    clients: &mut Clients,
    run_id: &str,
    live: &Live,
    stop: &Stop,
) -> Result<Vec<pb::Checkout>, tonic::Status> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = retrying(|| {
            let mut checkout = clients.checkout.clone();
            let request = pb::ListCheckoutsRequest {
                mode: pb::CoordinationMode::Unspecified.into(),
                page_size: PAGE_SIZE,
                page_token: token.clone(),
                status: 0,
                customer_id: run_id.to_owned(),
            };
            async move { checkout.list_checkouts(request).await }
        })
        .await?
        .into_inner();
        live.found
            .fetch_add(page.checkouts.len() as u64, Ordering::Relaxed);
        all.extend(page.checkouts);
        if page.next_page_token.is_empty() || stop.is_stopped() {
            return Ok(all);
        }
        token = page.next_page_token;
    }
}

/// Orders of the run that no checkout knows (created by an attempt whose answer was
/// lost, then compensated by key) must be cancelled and hold no captured payment.
async fn orphan_orders(
    clients: &mut Clients,
    run_id: &str,
    checkouts: &[pb::Checkout],
) -> Result<Vec<String>, tonic::Status> {
    let known: HashSet<&str> = checkouts.iter().map(|c| c.order_id.as_str()).collect();
    let mut violations = Vec::new();
    let mut token = String::new();
    loop {
        let page = retrying(|| {
            let mut order = clients.order.clone();
            let request = order::ListOrdersRequest {
                customer_id: run_id.to_owned(),
                page_size: PAGE_SIZE,
                page_token: token.clone(),
            };
            async move { order.list_orders(request).await }
        })
        .await?
        .into_inner();
        for o in page
            .orders
            .iter()
            .filter(|o| !known.contains(o.order_id.as_str()))
        {
            if o.status() != order::OrderStatus::Cancelled {
                violations.push(format!(
                    "order {} belongs to no checkout but is {}",
                    o.order_id,
                    o.status().as_str_name()
                ));
            }
            let payments = retrying(|| {
                let mut payment = clients.payment.clone();
                let request = payment::ListPaymentsRequest {
                    order_id: o.order_id.clone(),
                };
                async move { payment.list_payments(request).await }
            })
            .await?
            .into_inner()
            .payments;
            if payments
                .iter()
                .any(|p| p.status() == payment::PaymentStatus::Captured)
            {
                violations.push(format!(
                    "order {} belongs to no checkout but has a captured payment",
                    o.order_id
                ));
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(violations);
        }
        token = page.next_page_token;
    }
}

fn terminal(c: &pb::Checkout) -> bool {
    matches!(
        c.status(),
        pb::CheckoutStatus::Completed | pb::CheckoutStatus::Cancelled
    )
}

/// Reads again, many at once, the checkouts that have not ended, until all have, the
/// wait runs out or the run is stopped; returns when all had ended, if they did.
async fn settle(
    clients: &Clients,
    checkouts: &mut [pb::Checkout],
    config: &CheckConfig,
    live: &Live,
    stop: &Stop,
) -> Result<Option<Instant>, tonic::Status> {
    let until = Instant::now() + config.wait;
    loop {
        let open: Vec<usize> = (0..checkouts.len())
            .filter(|&i| !terminal(&checkouts[i]))
            .collect();
        live.pending.store(open.len() as u64, Ordering::Relaxed);
        if open.is_empty() {
            return Ok(Some(Instant::now()));
        }
        if Instant::now() >= until || stop.is_stopped() {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let ids: Vec<(usize, String)> = open
            .into_iter()
            .map(|i| (i, checkouts[i].checkout_id.clone()))
            .collect();
        let reads = ids.into_iter().map(|(i, checkout_id)| {
            let checkout = clients.checkout.clone();
            async move {
                let read = retrying(|| {
                    let request = pb::GetCheckoutRequest {
                        checkout_id: checkout_id.clone(),
                        order_id: String::new(),
                    };
                    let mut checkout = checkout.clone();
                    async move { checkout.get_checkout(request).await }
                })
                .await;
                (i, read)
            }
        });
        let mut reads = stream::iter(reads).buffer_unordered(config.concurrency.max(1));
        while let Some((i, read)) = reads.next().await {
            if let Some(fresh) = read?.into_inner().checkout {
                checkouts[i] = fresh;
            }
        }
    }
}

/// Waits up to `config.wait` for the run's checkouts to end, then checks them all,
/// counting in `live` as it goes; when `stop` is set, returns what it has, marked partial.
pub async fn check(
    clients: &mut Clients,
    state: &RunState,
    config: &CheckConfig,
    live: &Arc<Live>,
    stop: &Stop,
) -> Result<Verdict, tonic::Status> {
    let started = Instant::now();
    live.set_phase("listing");
    let mut checkouts = checkouts_of(clients, &state.run_id, live, stop).await?;
    live.set_phase("waiting for unfinished checkouts");
    let settled = settle(clients, &mut checkouts, config, live, stop).await?;
    let mut verdict = Verdict {
        checkouts: checkouts.len(),
        settled_after_s: settled.map(|at| (at - started).as_secs_f64()),
        stuck: checkouts.iter().filter(|c| !terminal(c)).count(),
        ..Verdict::default()
    };
    if (checkouts.len() as u64) > state.issued {
        verdict.violations.push(format!(
            "{} checkouts for {} requests: a key started two checkouts",
            checkouts.len(),
            state.issued
        ));
    }
    live.set_phase("checking");
    let mut units = BTreeMap::new();
    let checks = checkouts.iter().map(|c| {
        let clients = clients.clone();
        async move {
            let found = retrying(|| {
                let clients = clients.clone();
                async move {
                    let mut held = BTreeMap::new();
                    let violations = check_record(&clients, c, &mut held).await?;
                    Ok((violations, held))
                }
            })
            .await;
            (c, found)
        }
    });
    {
        let checks = stream::iter(checks)
            .buffer_unordered(config.concurrency.max(1))
            .take_until(stop.stopped());
        let mut checks = std::pin::pin!(checks);
        while let Some((c, result)) = checks.next().await {
            let (violations, held) = result?;
            *verdict
                .by_status
                .entry(
                    c.status()
                        .as_str_name()
                        .trim_start_matches("CHECKOUT_STATUS_")
                        .to_owned(),
                )
                .or_default() += 1;
            for (sku, n) in held {
                *units.entry(sku).or_default() += n;
            }
            verdict.checked += 1;
            live.checked.fetch_add(1, Ordering::Relaxed);
            live.violations
                .fetch_add(violations.len() as u64, Ordering::Relaxed);
            verdict.violations.extend(violations);
        }
    }
    verdict.partial = stop.is_stopped();
    if !verdict.partial {
        live.set_phase("orphan orders and stock");
        verdict
            .violations
            .extend(orphan_orders(clients, &state.run_id, &checkouts).await?);
        for (sku, stocked) in &state.skus {
            let sold = units.get(sku).copied().unwrap_or(0);
            verdict
                .violations
                .extend(check_stock(clients, sku, *stocked, sold).await?);
        }
    }
    verdict.seconds = started.elapsed().as_secs_f64();
    live.set_phase("done");
    Ok(verdict)
}

/// A read again, a few times with a pause, while the answer is a passing failure (a
/// service restarting, a Postgres restart, a full queue): a chaos run reads during and
/// right after faults, and a checker that gave up on one read would lose all the others.
async fn retrying<T, F, Fut>(mut read: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let mut pause = Duration::from_millis(100);
    for _ in 0..6 {
        match read().await {
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable
                        | Code::DeadlineExceeded
                        | Code::ResourceExhausted
                        | Code::Aborted
                        | Code::Unknown
                ) =>
            {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            answer => return answer,
        }
    }
    read().await
}
