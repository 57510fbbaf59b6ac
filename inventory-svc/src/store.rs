//! The SQL of inventory-svc, checked at compile time against its migrations (see
//! `scripts/sqlx-prepare`); `sqlx.toml` maps the reservation id and status columns to
//! their types. Functions take a connection so the API decides where the transaction
//! begins and ends.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{
    domain::{Line, Price, ReservationStatus},
    ids::{OrderId, ReservationId},
};

#[derive(Debug, Clone)]
pub struct ProductRow {
    pub sku: String,
    pub name: String,
    pub price_minor: i64,
    pub currency: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct StockRow {
    pub sku: String,
    pub available: i64,
    pub reserved: i64,
}

#[derive(Debug, Clone)]
pub struct ReservationRow {
    pub reservation_id: ReservationId,
    pub order_id: OrderId,
    pub status: ReservationStatus,
    pub created_at: DateTime<Utc>,
}

/// A reservation with its lines.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub row: ReservationRow,
    pub lines: Vec<Line>,
}

pub async fn upsert_product(
    conn: &mut PgConnection,
    sku: &str,
    name: &str,
    price: &Price,
) -> Result<ProductRow, sqlx::Error> {
    let row = sqlx::query_as!(
        ProductRow,
        "INSERT INTO products (sku, name, price_minor, currency) VALUES ($1, $2, $3, $4)
         ON CONFLICT (sku) DO UPDATE
           SET name = EXCLUDED.name, price_minor = EXCLUDED.price_minor,
               currency = EXCLUDED.currency, updated_at = now()
         RETURNING sku, name, price_minor, currency, updated_at",
        sku,
        name,
        price.amount_minor,
        price.currency,
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO stock (sku) VALUES ($1) ON CONFLICT DO NOTHING",
        sku
    )
    .execute(&mut *conn)
    .await?;
    Ok(row)
}

pub async fn get_product(
    conn: &mut PgConnection,
    sku: &str,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as!(
        ProductRow,
        "SELECT sku, name, price_minor, currency, updated_at FROM products WHERE sku = $1",
        sku
    )
    .fetch_optional(conn)
    .await
}

/// Up to `limit` products after `after` (exclusive), by sku.
pub async fn list_products(
    conn: &mut PgConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ProductRow>, sqlx::Error> {
    sqlx::query_as!(
        ProductRow,
        "SELECT sku, name, price_minor, currency, updated_at FROM products
         WHERE $1::text IS NULL OR sku > $1 ORDER BY sku LIMIT $2",
        after,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Catalog prices of the given skus; unknown skus are simply absent.
pub async fn prices(
    conn: &mut PgConnection,
    skus: &[String],
) -> Result<HashMap<String, Price>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT sku, price_minor, currency FROM products WHERE sku = ANY($1)",
        skus
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.sku,
                Price {
                    amount_minor: row.price_minor,
                    currency: row.currency,
                },
            )
        })
        .collect())
}

/// Sets available units; `None` when the sku is unknown.
pub async fn set_stock(
    conn: &mut PgConnection,
    sku: &str,
    available: i64,
) -> Result<Option<StockRow>, sqlx::Error> {
    sqlx::query_as!(
        StockRow,
        "UPDATE stock SET available = $2 WHERE sku = $1 RETURNING sku, available, reserved",
        sku,
        available,
    )
    .fetch_optional(conn)
    .await
}

pub async fn get_stock(
    conn: &mut PgConnection,
    sku: &str,
) -> Result<Option<StockRow>, sqlx::Error> {
    sqlx::query_as!(
        StockRow,
        "SELECT sku, available, reserved FROM stock WHERE sku = $1",
        sku
    )
    .fetch_optional(conn)
    .await
}

/// Locks the stock rows of `skus` in sku order and returns what is available.
pub async fn lock_available(
    conn: &mut PgConnection,
    skus: &[String],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT sku, available FROM stock WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
        skus
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.sku, row.available))
        .collect())
}

/// Moves units from available to reserved, only where enough are available. Returns
/// how many lines were covered: fewer than `lines.len()` means the caller rolls back.
pub async fn take_stock(conn: &mut PgConnection, lines: &[Line]) -> Result<u64, sqlx::Error> {
    let (skus, quantities) = columns(lines);
    let done = sqlx::query!(
        "UPDATE stock s
            SET available = s.available - l.quantity, reserved = s.reserved + l.quantity
           FROM unnest($1::text[], $2::int[]) AS l (sku, quantity)
          WHERE s.sku = l.sku AND s.available >= l.quantity",
        &skus,
        &quantities,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Moves units of a released reservation back to available.
pub async fn return_stock(conn: &mut PgConnection, lines: &[Line]) -> Result<(), sqlx::Error> {
    let (skus, quantities) = columns(lines);
    sqlx::query!(
        "UPDATE stock s
            SET available = s.available + l.quantity, reserved = s.reserved - l.quantity
           FROM unnest($1::text[], $2::int[]) AS l (sku, quantity)
          WHERE s.sku = l.sku",
        &skus,
        &quantities,
    )
    .execute(conn)
    .await?;
    Ok(())
}

fn columns(lines: &[Line]) -> (Vec<String>, Vec<i32>) {
    lines.iter().map(|l| (l.sku.clone(), l.quantity)).unzip()
}

pub async fn insert_reservation(
    conn: &mut PgConnection,
    order_id: OrderId,
    lines: &[Line],
) -> Result<Reservation, sqlx::Error> {
    let row = sqlx::query_as!(
        ReservationRow,
        "INSERT INTO reservations (reservation_id, order_id, status) VALUES ($1, $2, $3)
         RETURNING reservation_id, order_id, status, created_at",
        ReservationId::generate().as_uuid(),
        order_id.as_uuid(),
        ReservationStatus::Reserved.code(),
    )
    .fetch_one(&mut *conn)
    .await?;
    let (skus, quantities) = columns(lines);
    sqlx::query!(
        "INSERT INTO reservation_lines (reservation_id, sku, quantity)
         SELECT $1, sku, quantity FROM unnest($2::text[], $3::int[]) AS l (sku, quantity)",
        row.reservation_id.as_uuid(),
        &skus,
        &quantities,
    )
    .execute(&mut *conn)
    .await?;
    Ok(Reservation {
        row,
        lines: lines.to_vec(),
    })
}

/// A reservation by id, locked for the rest of the transaction.
pub async fn lock_reservation(
    conn: &mut PgConnection,
    reservation_id: ReservationId,
) -> Result<Option<Reservation>, sqlx::Error> {
    let row = sqlx::query_as!(
        ReservationRow,
        "SELECT reservation_id, order_id, status, created_at FROM reservations
         WHERE reservation_id = $1 FOR UPDATE",
        reservation_id.as_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    with_lines(conn, row).await
}

/// The latest reservation of an order.
pub async fn reservation_of_order(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<Reservation>, sqlx::Error> {
    let row = sqlx::query_as!(
        ReservationRow,
        "SELECT reservation_id, order_id, status, created_at FROM reservations
         WHERE order_id = $1 ORDER BY created_at DESC, reservation_id DESC LIMIT 1",
        order_id.as_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    with_lines(conn, row).await
}

async fn with_lines(
    conn: &mut PgConnection,
    row: Option<ReservationRow>,
) -> Result<Option<Reservation>, sqlx::Error> {
    let Some(row) = row else { return Ok(None) };
    let lines = sqlx::query_as!(
        Line,
        "SELECT sku, quantity FROM reservation_lines WHERE reservation_id = $1 ORDER BY sku",
        row.reservation_id.as_uuid(),
    )
    .fetch_all(conn)
    .await?;
    Ok(Some(Reservation { row, lines }))
}

pub async fn mark_released(
    conn: &mut PgConnection,
    reservation_id: ReservationId,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE reservations SET status = $2, released_at = now() WHERE reservation_id = $1",
        reservation_id.as_uuid(),
        ReservationStatus::Released.code(),
    )
    .execute(conn)
    .await?;
    Ok(())
}
