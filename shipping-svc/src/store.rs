//! The SQL of shipping-svc.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use shop_proto::common::v1::Address;

use crate::domain;

#[derive(Debug, Clone, FromRow)]
pub struct ShipmentRow {
    pub shipment_id: Uuid,
    pub order_id: Uuid,
    pub tracking_number: String,
    pub status: String,
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`ShipmentRow`], spliced into each query at compile time.
macro_rules! columns {
    () => {
        "shipment_id, order_id, tracking_number, status, name, line1, line2, city, postal_code,
         country, created_at, updated_at"
    };
}

pub async fn insert(
    conn: &mut PgConnection,
    order_id: Uuid,
    to: &Address,
) -> Result<ShipmentRow, sqlx::Error> {
    let shipment_id = Uuid::now_v7();
    sqlx::query_as(concat!(
        "INSERT INTO shipments (shipment_id, order_id, tracking_number, status, name, line1,
                                line2, city, postal_code, country)
         VALUES ($1, $2, $3, 'CREATED', $4, $5, $6, $7, $8, $9) RETURNING ",
        columns!()
    ))
    .bind(shipment_id)
    .bind(order_id)
    .bind(domain::tracking_number(Uuid::new_v4()))
    .bind(&to.name)
    .bind(&to.line1)
    .bind(&to.line2)
    .bind(&to.city)
    .bind(&to.postal_code)
    .bind(&to.country)
    .fetch_one(conn)
    .await
}

/// A shipment locked for the rest of the transaction.
pub async fn lock(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Option<ShipmentRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM shipments WHERE shipment_id = $1 FOR UPDATE"
    ))
    .bind(shipment_id)
    .fetch_optional(conn)
    .await
}

/// The latest shipment of an order.
pub async fn of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<ShipmentRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM shipments WHERE order_id = $1 ORDER BY created_at DESC, shipment_id DESC LIMIT 1"
    ))
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

pub async fn cancel(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<ShipmentRow, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE shipments SET status = 'CANCELLED', updated_at = now() WHERE shipment_id = $1
         RETURNING ",
        columns!()
    ))
    .bind(shipment_id)
    .fetch_one(conn)
    .await
}
