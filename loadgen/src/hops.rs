//! Where a step's time goes, from the stack's own metrics: each call as the orchestrator
//! timed it (`downstream_attempt_duration_seconds`, from sending to the reply) beside the
//! same call as the service timed it (`rpc_server_duration_seconds`, its handler and
//! database work). What lies between the two is the hop itself: the connection, TLS,
//! HTTP/2 and both sides' queues.

use std::collections::BTreeMap;

use e2e::{Stack, Svc, metrics};
use serde::Serialize;

/// The saga's forward calls: (orchestrator's method label, service, the service's RPC path).
const CALLS: [(&str, Svc, &str); 6] = [
    (
        "price_cart",
        Svc::Inventory,
        "/shop.inventory.v1.InventoryService/PriceCart",
    ),
    (
        "create_order",
        Svc::Order,
        "/shop.order.v1.OrderService/CreateOrder",
    ),
    (
        "charge",
        Svc::Payment,
        "/shop.payment.v1.PaymentService/Charge",
    ),
    (
        "reserve_stock",
        Svc::Inventory,
        "/shop.inventory.v1.InventoryService/ReserveStock",
    ),
    (
        "create_shipment",
        Svc::Shipping,
        "/shop.shipping.v1.ShippingService/CreateShipment",
    ),
    (
        "confirm_order",
        Svc::Order,
        "/shop.order.v1.OrderService/ConfirmOrder",
    ),
];

/// Every service's metrics at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot(BTreeMap<Svc, String>);

/// One call's mean time, as each side saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    /// As the orchestrator timed each attempt.
    pub caller_ms: f64,
    /// As the service timed its handler.
    pub server_ms: f64,
}

/// Scrapes every service (the stack must serve metrics).
pub async fn snapshot(stack: &Stack) -> anyhow::Result<Snapshot> {
    let mut texts = BTreeMap::new();
    for svc in Svc::ALL {
        let addr = stack
            .metrics_addr(svc)
            .ok_or_else(|| anyhow::anyhow!("the stack serves no metrics"))?;
        texts.insert(svc, metrics::scrape(addr).await?);
    }
    Ok(Snapshot(texts))
}

/// Each call's mean time between two snapshots, by the orchestrator's method label.
pub fn between(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, Hop> {
    let mean = |svc: Svc, name: &str, label: &str| {
        let read = |snapshot: &Snapshot, suffix: &str| {
            snapshot
                .0
                .get(&svc)
                .and_then(|text| metrics::sample(text, &format!("{name}{suffix}"), &[label]))
                .unwrap_or(0.0)
        };
        let count = read(after, "_count") - read(before, "_count");
        let sum = read(after, "_sum") - read(before, "_sum");
        (count > 0.0).then(|| 1000.0 * sum / count)
    };
    CALLS
        .iter()
        .filter_map(|(method, svc, path)| {
            let caller = mean(
                Svc::Orchestrator,
                "downstream_attempt_duration_seconds",
                &format!("method=\"{method}\""),
            )?;
            let server = mean(
                *svc,
                "rpc_server_duration_seconds",
                &format!("method=\"{path}\""),
            )?;
            Some((
                (*method).to_owned(),
                Hop {
                    caller_ms: caller,
                    server_ms: server,
                },
            ))
        })
        .collect()
}
