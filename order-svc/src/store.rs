//! The SQL of order-svc, checked at compile time against its migrations (see
//! `scripts/sqlx-prepare`). `sqlx.toml` maps the id and status columns to their types.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use shop_proto::common::v1::Address;
use sqlx::PgConnection;

use crate::{
    domain::OrderStatus,
    ids::{CheckoutId, OrderId},
};

#[derive(Debug, Clone)]
pub struct OrderRow {
    pub order_id: OrderId,
    pub customer_id: String,
    pub status: OrderStatus,
    pub currency: String,
    pub total_minor: i64,
    pub ship_name: String,
    pub ship_line1: String,
    /// As the address gave it: empty when it has no second line.
    pub ship_line2: String,
    pub ship_city: String,
    pub ship_postal: String,
    pub ship_country: String,
    /// Set exactly when the order is CANCELLED (a CHECK says so).
    pub cancel_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The checkout the order is for: at most one order each (a unique constraint).
    /// `None` only for orders made before orders recorded it.
    pub checkout_id: Option<CheckoutId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRow {
    pub sku: String,
    pub quantity: i32,
    pub unit_price_minor: i64,
    pub line_total_minor: i64,
}

#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// `None` for the order's creation.
    pub from_status: Option<OrderStatus>,
    pub to_status: OrderStatus,
    pub reason: String,
    pub changed_at: DateTime<Utc>,
}

/// An order with its lines.
#[derive(Debug, Clone)]
pub struct Order {
    pub row: OrderRow,
    pub lines: Vec<LineRow>,
}

/// A validated new order.
#[derive(Debug)]
pub struct NewOrder<'a> {
    pub checkout_id: CheckoutId,
    pub customer_id: &'a str,
    pub currency: &'a str,
    pub total_minor: i64,
    pub address: &'a Address,
    pub lines: Vec<LineRow>,
}

/// Inserts a PENDING order, its lines and the first history entry; `None`, with nothing
/// written, when the checkout has an order already (a concurrent insert for it waits for
/// the first to commit, then finds it).
pub async fn insert(
    conn: &mut PgConnection,
    new: NewOrder<'_>,
) -> Result<Option<Order>, sqlx::Error> {
    let a = new.address;
    let row = sqlx::query_as!(
        OrderRow,
        "INSERT INTO orders (order_id, customer_id, status, currency, total_minor, ship_name,
                             ship_line1, ship_line2, ship_city, ship_postal, ship_country,
                             checkout_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT ON CONSTRAINT orders_one_per_checkout DO NOTHING
         RETURNING order_id, customer_id, status, currency, total_minor, ship_name,
                   ship_line1, ship_line2, ship_city, ship_postal, ship_country,
                   cancel_reason, created_at, updated_at, checkout_id",
        OrderId::generate().as_uuid(),
        new.customer_id,
        OrderStatus::Pending.code(),
        new.currency,
        new.total_minor,
        a.name,
        a.line1,
        a.line2,
        a.city,
        a.postal_code,
        a.country,
        new.checkout_id.as_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let skus: Vec<String> = new.lines.iter().map(|l| l.sku.clone()).collect();
    let quantities: Vec<i32> = new.lines.iter().map(|l| l.quantity).collect();
    let prices: Vec<i64> = new.lines.iter().map(|l| l.unit_price_minor).collect();
    let totals: Vec<i64> = new.lines.iter().map(|l| l.line_total_minor).collect();
    sqlx::query!(
        "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price_minor,
                                  line_total_minor)
         SELECT $1, n, sku, quantity, price, total
           FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[])
                WITH ORDINALITY AS l (sku, quantity, price, total, n)",
        row.order_id.as_uuid(),
        &skus,
        &quantities,
        &prices,
        &totals,
    )
    .execute(&mut *conn)
    .await?;
    record(conn, row.order_id, None, OrderStatus::Pending, "created").await?;
    Ok(Some(Order {
        row,
        lines: new.lines,
    }))
}

async fn record(
    conn: &mut PgConnection,
    order_id: OrderId,
    from: Option<OrderStatus>,
    to: OrderStatus,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO order_status_history (order_id, from_status, to_status, reason)
         VALUES ($1, $2, $3, $4)",
        order_id.as_uuid(),
        from.map(OrderStatus::code),
        to.code(),
        reason,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An order locked for the rest of the transaction.
pub async fn lock(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as!(
        OrderRow,
        "SELECT order_id, customer_id, status, currency, total_minor, ship_name, ship_line1,
                ship_line2, ship_city, ship_postal, ship_country, cancel_reason, created_at,
                updated_at, checkout_id
           FROM orders WHERE order_id = $1 FOR UPDATE",
        order_id.as_uuid(),
    )
    .fetch_optional(conn)
    .await
}

/// Moves an order to `to` and records why. `reason` becomes the order's cancel reason
/// when `to` is CANCELLED, and only then.
pub async fn set_status(
    conn: &mut PgConnection,
    order: &OrderRow,
    from: OrderStatus,
    to: OrderStatus,
    reason: &str,
) -> Result<OrderRow, sqlx::Error> {
    let cancel_reason = (to == OrderStatus::Cancelled).then_some(reason);
    let row = sqlx::query_as!(
        OrderRow,
        "UPDATE orders SET status = $2, cancel_reason = $3, updated_at = now()
          WHERE order_id = $1
         RETURNING order_id, customer_id, status, currency, total_minor, ship_name,
                   ship_line1, ship_line2, ship_city, ship_postal, ship_country,
                   cancel_reason, created_at, updated_at, checkout_id",
        order.order_id.as_uuid(),
        to.code(),
        cancel_reason,
    )
    .fetch_one(&mut *conn)
    .await?;
    record(conn, order.order_id, Some(from), to, reason).await?;
    Ok(row)
}

pub async fn get(conn: &mut PgConnection, order_id: OrderId) -> Result<Option<Order>, sqlx::Error> {
    let row = sqlx::query_as!(
        OrderRow,
        "SELECT order_id, customer_id, status, currency, total_minor, ship_name, ship_line1,
                ship_line2, ship_city, ship_postal, ship_country, cancel_reason, created_at,
                updated_at, checkout_id
           FROM orders WHERE order_id = $1",
        order_id.as_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(with_lines(conn, vec![row]).await?.pop())
}

/// Up to `limit` orders of a customer, newest first, after the cursor `before`.
pub async fn list(
    conn: &mut PgConnection,
    customer_id: &str,
    before: Option<OrderId>,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    let rows = sqlx::query_as!(
        OrderRow,
        "SELECT order_id, customer_id, status, currency, total_minor, ship_name, ship_line1,
                ship_line2, ship_city, ship_postal, ship_country, cancel_reason, created_at,
                updated_at, checkout_id
           FROM orders WHERE customer_id = $1 AND ($2::uuid IS NULL OR order_id < $2)
          ORDER BY order_id DESC LIMIT $3",
        customer_id,
        before.map(OrderId::as_uuid),
        limit,
    )
    .fetch_all(&mut *conn)
    .await?;
    with_lines(conn, rows).await
}

/// Attaches lines to orders with one query for them all.
pub async fn with_lines(
    conn: &mut PgConnection,
    rows: Vec<OrderRow>,
) -> Result<Vec<Order>, sqlx::Error> {
    let ids: Vec<_> = rows.iter().map(|r| r.order_id.as_uuid()).collect();
    let lines = sqlx::query!(
        "SELECT order_id, sku, quantity, unit_price_minor, line_total_minor FROM order_lines
          WHERE order_id = ANY($1) ORDER BY order_id, line_no",
        &ids,
    )
    .fetch_all(conn)
    .await?;
    let mut by_order: HashMap<OrderId, Vec<LineRow>> = HashMap::new();
    for line in lines {
        by_order.entry(line.order_id).or_default().push(LineRow {
            sku: line.sku,
            quantity: line.quantity,
            unit_price_minor: line.unit_price_minor,
            line_total_minor: line.line_total_minor,
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let lines = by_order.remove(&row.order_id).unwrap_or_default();
            Order { row, lines }
        })
        .collect())
}

/// The transitions of an order, oldest first (empty for an unknown order).
pub async fn history(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as!(
        HistoryRow,
        "SELECT from_status, to_status, reason, changed_at FROM order_status_history
          WHERE order_id = $1 ORDER BY id",
        order_id.as_uuid(),
    )
    .fetch_all(conn)
    .await
}
