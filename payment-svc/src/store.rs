//! The SQL of payment-svc, checked at compile time against its migrations (see
//! `scripts/sqlx-prepare`). `sqlx.toml` maps the id, status and decline reason columns to
//! their types.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::{DeclineReason, PaymentStatus},
    ids::{OrderId, PaymentId},
};

#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount_minor: i64,
    pub currency: String,
    pub status: PaymentStatus,
    /// Set exactly when the payment is DECLINED (a CHECK says so).
    pub decline_reason: Option<DeclineReason>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new payment; the caller decided its status.
#[derive(Debug)]
pub struct NewPayment<'a> {
    pub order_id: OrderId,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub status: PaymentStatus,
    pub decline_reason: Option<DeclineReason>,
}

pub async fn insert(
    conn: &mut PgConnection,
    new: &NewPayment<'_>,
) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query_as!(
        PaymentRow,
        "INSERT INTO payments (payment_id, order_id, amount_minor, currency, status,
                               decline_reason)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING payment_id, order_id, amount_minor, currency, status, decline_reason,
                   created_at, updated_at",
        PaymentId::generate().as_uuid(),
        new.order_id.as_uuid(),
        new.amount_minor,
        new.currency,
        new.status.code(),
        new.decline_reason.map(DeclineReason::code),
    )
    .fetch_one(conn)
    .await
}

pub async fn get(
    conn: &mut PgConnection,
    payment_id: PaymentId,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as!(
        PaymentRow,
        "SELECT payment_id, order_id, amount_minor, currency, status, decline_reason,
                created_at, updated_at
           FROM payments WHERE payment_id = $1",
        payment_id.as_uuid(),
    )
    .fetch_optional(conn)
    .await
}

/// A payment locked for the rest of the transaction.
pub async fn lock(
    conn: &mut PgConnection,
    payment_id: PaymentId,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as!(
        PaymentRow,
        "SELECT payment_id, order_id, amount_minor, currency, status, decline_reason,
                created_at, updated_at
           FROM payments WHERE payment_id = $1 FOR UPDATE",
        payment_id.as_uuid(),
    )
    .fetch_optional(conn)
    .await
}

/// The order's CAPTURED payment (there is at most one), locked for the rest of the
/// transaction.
pub async fn lock_captured(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as!(
        PaymentRow,
        "SELECT payment_id, order_id, amount_minor, currency, status, decline_reason,
                created_at, updated_at
           FROM payments WHERE order_id = $1 AND status = $2 FOR UPDATE",
        order_id.as_uuid(),
        PaymentStatus::Captured.code(),
    )
    .fetch_optional(conn)
    .await
}

pub async fn of_order(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query_as!(
        PaymentRow,
        "SELECT payment_id, order_id, amount_minor, currency, status, decline_reason,
                created_at, updated_at
           FROM payments WHERE order_id = $1 ORDER BY created_at, payment_id",
        order_id.as_uuid(),
    )
    .fetch_all(conn)
    .await
}

/// Marks a captured payment refunded and records the refund, with its reason if it was
/// given one.
pub async fn refund(
    conn: &mut PgConnection,
    payment: &PaymentRow,
    reason: Option<&str>,
) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query!(
        "INSERT INTO refunds (refund_id, payment_id, amount_minor, reason)
         VALUES ($1, $2, $3, $4)",
        Uuid::now_v7(),
        payment.payment_id.as_uuid(),
        payment.amount_minor,
        reason,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_as!(
        PaymentRow,
        "UPDATE payments SET status = $2, updated_at = now() WHERE payment_id = $1
         RETURNING payment_id, order_id, amount_minor, currency, status, decline_reason,
                   created_at, updated_at",
        payment.payment_id.as_uuid(),
        PaymentStatus::Refunded.code(),
    )
    .fetch_one(conn)
    .await
}
