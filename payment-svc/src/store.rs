//! The SQL of payment-svc.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
    pub decline_reason: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`PaymentRow`], spliced into each query at compile time.
macro_rules! columns {
    () => {
        "payment_id, order_id, amount_minor, currency, status, decline_reason, created_at, updated_at"
    };
}

/// A new payment; the caller decided its status.
#[derive(Debug)]
pub struct NewPayment<'a> {
    pub order_id: Uuid,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub status: &'static str,
    pub decline_reason: &'a str,
}

pub async fn insert(
    conn: &mut PgConnection,
    new: &NewPayment<'_>,
) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query_as(concat!("INSERT INTO payments (payment_id, order_id, amount_minor, currency, status, decline_reason)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ", columns!(), ""))
    .bind(Uuid::now_v7())
    .bind(new.order_id)
    .bind(new.amount_minor)
    .bind(new.currency)
    .bind(new.status)
    .bind(new.decline_reason)
    .fetch_one(conn)
    .await
}

pub async fn get(
    conn: &mut PgConnection,
    payment_id: Uuid,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM payments WHERE payment_id = $1"
    ))
    .bind(payment_id)
    .fetch_optional(conn)
    .await
}

/// A payment locked for the rest of the transaction.
pub async fn lock(
    conn: &mut PgConnection,
    payment_id: Uuid,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM payments WHERE payment_id = $1 FOR UPDATE"
    ))
    .bind(payment_id)
    .fetch_optional(conn)
    .await
}

/// The order's CAPTURED payment (there is at most one), locked for the rest of the
/// transaction.
pub async fn lock_captured(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM payments WHERE order_id = $1 AND status = 'CAPTURED' FOR UPDATE"
    ))
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

pub async fn of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM payments WHERE order_id = $1 ORDER BY created_at, payment_id"
    ))
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// Marks a captured payment refunded and records the refund.
pub async fn refund(
    conn: &mut PgConnection,
    payment: &PaymentRow,
    reason: &str,
) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query(
        "INSERT INTO refunds (refund_id, payment_id, amount_minor, reason) VALUES ($1, $2, $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(payment.payment_id)
    .bind(payment.amount_minor)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(concat!(
        "UPDATE payments SET status = 'REFUNDED', updated_at = now() WHERE payment_id = $1
         RETURNING ",
        columns!(),
        ""
    ))
    .bind(payment.payment_id)
    .fetch_one(conn)
    .await
}
