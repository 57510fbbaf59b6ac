//! The invariants of docs/CONTRACT.md, checked as an outsider would: only through the
//! services' public read RPCs. Each check returns the violations it found, in words.

use std::collections::BTreeMap;

use shop_proto::{
    checkout::v1 as checkout, inventory::v1 as inventory, order::v1 as order,
    payment::v1 as payment, shipping::v1 as shipping,
};
use tonic::Code;

use crate::clients::Clients;

/// Checks one checkout against the order, payment, inventory and shipping records.
/// `units` collects, per sku, the units a COMPLETED checkout holds (for [`check_stock`]).
pub async fn check_checkout(
    clients: &mut Clients,
    checkout_id: &str,
    units: &mut BTreeMap<String, i64>,
) -> Result<Vec<String>, tonic::Status> {
    let c = clients
        .checkout
        .get_checkout(checkout::GetCheckoutRequest {
            checkout_id: checkout_id.into(),
            order_id: String::new(),
        })
        .await?
        .into_inner()
        .checkout
        .unwrap_or_default();
    check_record(clients, &c, units).await
}

/// [`check_checkout`] for a checkout already read (a page of `ListCheckouts`), so a
/// checker of many checkouts reads each one once. The four services are read at once.
pub async fn check_record(
    clients: &Clients,
    c: &checkout::Checkout,
    units: &mut BTreeMap<String, i64>,
) -> Result<Vec<String>, tonic::Status> {
    let checkout_id = c.checkout_id.as_str();
    let mut v = Vec::new();
    let status = c.status();
    let completed = match status {
        checkout::CheckoutStatus::Completed => true,
        checkout::CheckoutStatus::Cancelled => false,
        other => {
            v.push(format!(
                "checkout {checkout_id} is {} (not terminal)",
                other.as_str_name()
            ));
            return Ok(v);
        }
    };
    // An orchestrated checkout's record agrees with itself: its driver writes each step's
    // outcome before the next call, so a completed one shows every step succeeded (a gap
    // is a lost record). A choreographed timeline is assembled from events handled out of
    // order, so it may show COMPLETED before the last of its step events is in.
    if completed && c.mode() == checkout::CoordinationMode::Orchestrated {
        for step in c
            .steps
            .iter()
            .filter(|s| s.status() != checkout::StepStatus::Succeeded)
        {
            v.push(format!(
                "checkout {checkout_id} COMPLETED with step {} {}",
                step.name,
                step.status().as_str_name()
            ));
        }
    }
    if c.order_id.is_empty() {
        if completed {
            v.push(format!("checkout {checkout_id} COMPLETED without an order"));
        }
        return Ok(v);
    }
    let order_id = c.order_id.clone();
    let (mut order, mut payment, mut inventory, mut shipping) = (
        clients.order.clone(),
        clients.payment.clone(),
        clients.inventory.clone(),
        clients.shipping.clone(),
    );
    let (order, payments, reservation, shipment) = tokio::try_join!(
        order.get_order(order::GetOrderRequest {
            order_id: order_id.clone(),
        }),
        payment.list_payments(payment::ListPaymentsRequest {
            order_id: order_id.clone(),
        }),
        async {
            optional(
                inventory
                    .get_reservation(inventory::GetReservationRequest {
                        order_id: order_id.clone(),
                    })
                    .await,
            )
        },
        async {
            optional(
                shipping
                    .get_shipment(shipping::GetShipmentRequest {
                        order_id: order_id.clone(),
                    })
                    .await,
            )
        },
    )?;
    let order = order.into_inner().order.unwrap_or_default();
    let payments = payments.into_inner().payments;
    let captured: Vec<_> = payments
        .iter()
        .filter(|p| p.status() == payment::PaymentStatus::Captured)
        .collect();
    let reservation = reservation
        .and_then(|r| r.reservation)
        .filter(|r| r.status() == inventory::ReservationStatus::Reserved);
    let shipment = shipment
        .and_then(|s| s.shipment)
        .filter(|s| s.status() == shipping::ShipmentStatus::Created);
    let who = format!("checkout {checkout_id} (order {order_id})");
    if completed {
        if order.status() != order::OrderStatus::Confirmed {
            v.push(format!(
                "{who} COMPLETED but order is {}",
                order.status().as_str_name()
            ));
        }
        let total = c.total.as_ref().map(|m| m.amount_minor);
        if captured.len() != 1 || captured[0].amount.as_ref().map(|m| m.amount_minor) != total {
            v.push(format!(
                "{who} COMPLETED with {} captured payments, expected one of {total:?}",
                captured.len()
            ));
        }
        match &reservation {
            Some(r) => {
                for line in &r.lines {
                    *units.entry(line.sku.clone()).or_default() += i64::from(line.quantity);
                }
            }
            None => v.push(format!("{who} COMPLETED without reserved stock")),
        }
        match &shipment {
            Some(s) if !s.tracking_number.is_empty() && s.tracking_number == c.tracking_number => {}
            _ => v.push(format!(
                "{who} COMPLETED without a matching CREATED shipment"
            )),
        }
    } else {
        if order.status() != order::OrderStatus::Cancelled {
            v.push(format!(
                "{who} CANCELLED but order is {}",
                order.status().as_str_name()
            ));
        }
        if !captured.is_empty() {
            v.push(format!(
                "{who} CANCELLED with {} captured payments",
                captured.len()
            ));
        }
        if reservation.is_some() {
            v.push(format!("{who} CANCELLED but stock is still held"));
        }
        if shipment.is_some() {
            v.push(format!("{who} CANCELLED with a live shipment"));
        }
    }
    Ok(v)
}

/// Stock conservation for one sku: never below zero, and available + held = stocked,
/// where held must equal the units of COMPLETED checkouts (`sold`).
pub async fn check_stock(
    clients: &mut Clients,
    sku: &str,
    stocked: i64,
    sold: i64,
) -> Result<Vec<String>, tonic::Status> {
    let s = clients
        .inventory
        .get_stock(inventory::GetStockRequest { sku: sku.into() })
        .await?
        .into_inner();
    let mut v = Vec::new();
    if s.available < 0 {
        v.push(format!("{sku}: available is {}", s.available));
    }
    if s.available + s.reserved != stocked {
        v.push(format!(
            "{sku}: available {} + reserved {} != stocked {stocked}",
            s.available, s.reserved
        ));
    }
    if s.reserved != sold {
        v.push(format!("{sku}: {} units held but {sold} sold", s.reserved));
    }
    Ok(v)
}

fn optional<T>(
    result: Result<tonic::Response<T>, tonic::Status>,
) -> Result<Option<T>, tonic::Status> {
    match result {
        Ok(reply) => Ok(Some(reply.into_inner())),
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(status),
    }
}
