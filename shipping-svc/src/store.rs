//! The SQL of shipping-svc, checked at compile time against its migrations (see
//! `scripts/sqlx-prepare`). `sqlx.toml` maps the id and status columns to their types.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use shop_proto::common::v1::Address;

use crate::{
    domain::{self, ShipmentStatus},
    ids::{OrderId, ShipmentId},
};

#[derive(Debug, Clone)]
pub struct ShipmentRow {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub tracking_number: String,
    pub status: ShipmentStatus,
    pub name: String,
    pub line1: String,
    /// As the address gave it: empty when it has no second line.
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn insert(
    conn: &mut PgConnection,
    order_id: OrderId,
    to: &Address,
) -> Result<ShipmentRow, sqlx::Error> {
    sqlx::query_as!(
        ShipmentRow,
        "INSERT INTO shipments (shipment_id, order_id, tracking_number, status, name, line1,
                                line2, city, postal_code, country)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING shipment_id, order_id, tracking_number, status, name, line1, line2, city,
                   postal_code, country, created_at, updated_at",
        ShipmentId::generate().as_uuid(),
        order_id.as_uuid(),
        domain::tracking_number(Uuid::new_v4()),
        ShipmentStatus::Created.code(),
        to.name,
        to.line1,
        to.line2,
        to.city,
        to.postal_code,
        to.country,
    )
    .fetch_one(conn)
    .await
}

/// A shipment locked for the rest of the transaction.
pub async fn lock(
    conn: &mut PgConnection,
    shipment_id: ShipmentId,
) -> Result<Option<ShipmentRow>, sqlx::Error> {
    sqlx::query_as!(
        ShipmentRow,
        "SELECT shipment_id, order_id, tracking_number, status, name, line1, line2, city,
                postal_code, country, created_at, updated_at
           FROM shipments WHERE shipment_id = $1 FOR UPDATE",
        shipment_id.as_uuid(),
    )
    .fetch_optional(conn)
    .await
}

/// The latest shipment of an order.
pub async fn of_order(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<ShipmentRow>, sqlx::Error> {
    sqlx::query_as!(
        ShipmentRow,
        "SELECT shipment_id, order_id, tracking_number, status, name, line1, line2, city,
                postal_code, country, created_at, updated_at
           FROM shipments WHERE order_id = $1
          ORDER BY created_at DESC, shipment_id DESC LIMIT 1",
        order_id.as_uuid(),
    )
    .fetch_optional(conn)
    .await
}

pub async fn cancel(
    conn: &mut PgConnection,
    shipment_id: ShipmentId,
) -> Result<ShipmentRow, sqlx::Error> {
    sqlx::query_as!(
        ShipmentRow,
        "UPDATE shipments SET status = $2, updated_at = now() WHERE shipment_id = $1
         RETURNING shipment_id, order_id, tracking_number, status, name, line1, line2, city,
                   postal_code, country, created_at, updated_at",
        shipment_id.as_uuid(),
        ShipmentStatus::Cancelled.code(),
    )
    .fetch_one(conn)
    .await
}
