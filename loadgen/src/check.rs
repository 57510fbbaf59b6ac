//! The invariant checker: reads every service back through its public read RPCs and
//! checks docs/CONTRACT.md's invariants for every checkout a run made, plus stock
//! conservation for every sku the run created.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use e2e::{
    clients::Clients,
    invariants::{check_checkout, check_stock},
};
use shop_proto::{checkout::v1 as pb, order::v1 as order, payment::v1 as payment};

use crate::load::RunState;

/// What the checker found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verdict {
    pub checkouts: usize,
    pub by_status: BTreeMap<String, usize>,
    pub violations: Vec<String>,
}

impl Verdict {
    /// The human-readable form: counts, then one line per violation.
    pub fn render(&self) -> String {
        let mut text = format!(
            "{} checkouts checked: {:?}\n",
            self.checkouts, self.by_status
        );
        for violation in &self.violations {
            text.push_str(&format!("VIOLATION {violation}\n"));
        }
        text.push_str(&format!("{} violations\n", self.violations.len()));
        text
    }
}

/// Every checkout of customer `run_id`, all pages.
async fn checkouts_of(
    clients: &mut Clients,
    run_id: &str,
) -> Result<Vec<pb::Checkout>, tonic::Status> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = clients
            .checkout
            .list_checkouts(pb::ListCheckoutsRequest {
                mode: pb::CoordinationMode::Unspecified.into(),
                page_size: 500,
                page_token: token,
                status: 0,
                customer_id: run_id.to_owned(),
            })
            .await?
            .into_inner();
        all.extend(page.checkouts);
        if page.next_page_token.is_empty() {
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
    let known: std::collections::HashSet<&str> =
        checkouts.iter().map(|c| c.order_id.as_str()).collect();
    let mut violations = Vec::new();
    let mut token = String::new();
    loop {
        let page = clients
            .order
            .list_orders(order::ListOrdersRequest {
                customer_id: run_id.to_owned(),
                page_size: 500,
                page_token: token,
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
            let payments = clients
                .payment
                .list_payments(payment::ListPaymentsRequest {
                    order_id: o.order_id.clone(),
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

/// Waits up to `wait` for the run's checkouts to end, then checks them all.
pub async fn check(
    clients: &mut Clients,
    state: &RunState,
    wait: Duration,
) -> Result<Verdict, tonic::Status> {
    let until = Instant::now() + wait;
    let mut checkouts = checkouts_of(clients, &state.run_id).await?;
    while !checkouts.iter().all(terminal) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        checkouts = checkouts_of(clients, &state.run_id).await?;
    }
    let mut verdict = Verdict {
        checkouts: checkouts.len(),
        ..Verdict::default()
    };
    if (checkouts.len() as u64) > state.issued {
        verdict.violations.push(format!(
            "{} checkouts for {} requests: a key started two checkouts",
            checkouts.len(),
            state.issued
        ));
    }
    let mut units = BTreeMap::new();
    for c in &checkouts {
        *verdict
            .by_status
            .entry(
                c.status()
                    .as_str_name()
                    .trim_start_matches("CHECKOUT_STATUS_")
                    .to_owned(),
            )
            .or_default() += 1;
        verdict
            .violations
            .extend(check_checkout(clients, &c.checkout_id, &mut units).await?);
    }
    verdict
        .violations
        .extend(orphan_orders(clients, &state.run_id, &checkouts).await?);
    for (sku, stocked) in &state.skus {
        let sold = units.get(sku).copied().unwrap_or(0);
        verdict
            .violations
            .extend(check_stock(clients, sku, *stocked, sold).await?);
    }
    Ok(verdict)
}
