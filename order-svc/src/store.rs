//! The SQL of order-svc.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use shop_proto::common::v1::Address;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::domain::Status;

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub order_id: Uuid,
    pub customer_id: String,
    pub status: String,
    pub currency: String,
    pub total_minor: i64,
    pub ship_name: String,
    pub ship_line1: String,
    pub ship_line2: String,
    pub ship_city: String,
    pub ship_postal: String,
    pub ship_country: String,
    pub cancel_reason: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The checkout the order is for: at most one order each (a unique constraint).
    /// `None` only for orders made before orders recorded it.
    pub checkout_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct LineRow {
    pub sku: String,
    pub quantity: i32,
    pub unit_price_minor: i64,
    pub line_total_minor: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: String,
    pub changed_at: DateTime<Utc>,
}

/// An order with its lines.
#[derive(Debug, Clone)]
pub struct Order {
    pub row: OrderRow,
    pub lines: Vec<LineRow>,
}

/// The columns of [`OrderRow`], spliced into each query at compile time.
macro_rules! columns {
    () => {
        "order_id, customer_id, status, currency, total_minor, ship_name, ship_line1, ship_line2,
         ship_city, ship_postal, ship_country, cancel_reason, created_at, updated_at, checkout_id"
    };
}

/// A validated new order.
#[derive(Debug)]
pub struct NewOrder<'a> {
    pub checkout_id: Uuid,
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
    let row: Option<OrderRow> = sqlx::query_as(concat!(
        "INSERT INTO orders (order_id, customer_id, status, currency, total_minor, ship_name,
                             ship_line1, ship_line2, ship_city, ship_postal, ship_country,
                             checkout_id)
         VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT ON CONSTRAINT orders_one_per_checkout DO NOTHING
         RETURNING ",
        columns!()
    ))
    .bind(Uuid::now_v7())
    .bind(new.customer_id)
    .bind(new.currency)
    .bind(new.total_minor)
    .bind(&a.name)
    .bind(&a.line1)
    .bind(&a.line2)
    .bind(&a.city)
    .bind(&a.postal_code)
    .bind(&a.country)
    .bind(new.checkout_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let skus: Vec<&str> = new.lines.iter().map(|l| l.sku.as_str()).collect();
    let quantities: Vec<i32> = new.lines.iter().map(|l| l.quantity).collect();
    let prices: Vec<i64> = new.lines.iter().map(|l| l.unit_price_minor).collect();
    let totals: Vec<i64> = new.lines.iter().map(|l| l.line_total_minor).collect();
    sqlx::query(
        "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price_minor, line_total_minor)
         SELECT $1, n, sku, quantity, price, total
           FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[])
                WITH ORDINALITY AS l (sku, quantity, price, total, n)",
    )
    .bind(row.order_id)
    .bind(&skus)
    .bind(&quantities)
    .bind(&prices)
    .bind(&totals)
    .execute(&mut *conn)
    .await?;
    record(conn, row.order_id, None, Status::Pending, "created").await?;
    Ok(Some(Order {
        row,
        lines: new.lines,
    }))
}

async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    from: Option<Status>,
    to: Status,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO order_status_history (order_id, from_status, to_status, reason)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(order_id)
    .bind(from.map(Status::as_str))
    .bind(to.as_str())
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// An order locked for the rest of the transaction.
pub async fn lock(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM orders WHERE order_id = $1 FOR UPDATE"
    ))
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// Moves an order to `to` and records why.
pub async fn set_status(
    conn: &mut PgConnection,
    order: &OrderRow,
    from: Status,
    to: Status,
    reason: &str,
) -> Result<OrderRow, sqlx::Error> {
    let cancel_reason = if to == Status::Cancelled { reason } else { "" };
    let row = sqlx::query_as(concat!(
        "UPDATE orders SET status = $2, cancel_reason = $3, updated_at = now()
         WHERE order_id = $1 RETURNING ",
        columns!()
    ))
    .bind(order.order_id)
    .bind(to.as_str())
    .bind(cancel_reason)
    .fetch_one(&mut *conn)
    .await?;
    record(conn, order.order_id, Some(from), to, reason).await?;
    Ok(row)
}

pub async fn get(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<Order>, sqlx::Error> {
    let row: Option<OrderRow> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM orders WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(with_lines(conn, vec![row]).await?.pop())
}

/// Up to `limit` orders of a customer, newest first, after the cursor `before`.
pub async fn list(
    conn: &mut PgConnection,
    customer_id: &str,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    let rows: Vec<OrderRow> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM orders WHERE customer_id = $1 AND ($2::uuid IS NULL OR order_id < $2)
          ORDER BY order_id DESC LIMIT $3"
    ))
    .bind(customer_id)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    with_lines(conn, rows).await
}

/// Attaches lines to orders with one query for them all.
pub async fn with_lines(
    conn: &mut PgConnection,
    rows: Vec<OrderRow>,
) -> Result<Vec<Order>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.order_id).collect();
    let lines: Vec<(Uuid, String, i32, i64, i64)> = sqlx::query_as(
        "SELECT order_id, sku, quantity, unit_price_minor, line_total_minor FROM order_lines
         WHERE order_id = ANY($1) ORDER BY order_id, line_no",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut by_order: HashMap<Uuid, Vec<LineRow>> = HashMap::new();
    for (order_id, sku, quantity, unit_price_minor, line_total_minor) in lines {
        by_order.entry(order_id).or_default().push(LineRow {
            sku,
            quantity,
            unit_price_minor,
            line_total_minor,
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
    order_id: Uuid,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT from_status, to_status, reason, changed_at FROM order_status_history
         WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}
